package gcppubsub_test

import (
	"testing"

	"github.com/herald-dev/herald/broker/gcppubsub"
	"github.com/herald-dev/herald/internal/urlfuzz"
)

// FuzzOpenURL feeds OpenURL arbitrary URLs with a context already cancelled,
// so that only the parsing path runs (nothing is dialled or started): it
// must not panic, must not block, and must fail with an error that wraps
// broker.ErrBadURL, broker.ErrInvalidOption, broker.ErrBadTopic or, for a
// URL that parsed, the context's error.
func FuzzOpenURL(f *testing.F) {
	seeds := []string{
		"gcppubsub://",
		"gcppubsub://p",
		"gcppubsub://p/path",
		"gcppubsub://p:1",
		"gcppubsub://p?nope=1",
		"gcppubsub://p?server_backoff=maybe",
		"gcppubsub://p?endpoint=127.0.0.1:1",
	}
	urlfuzz.OpenURL(f, seeds, gcppubsub.OpenURL, urlfuzz.BrokerErrors()...)
}
