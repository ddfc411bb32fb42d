package mem_test

import (
	"testing"

	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/internal/urlfuzz"
)

// FuzzOpenURL feeds OpenURL arbitrary URLs with a context already cancelled,
// so that only the parsing path runs (nothing is dialled or started): it
// must not panic, must not block, and must fail with an error that wraps
// broker.ErrBadURL, broker.ErrInvalidOption, broker.ErrBadTopic or, for a
// URL that parsed, the context's error.
func FuzzOpenURL(f *testing.F) {
	seeds := []string{
		"mem://",
		"mem:",
		"MEM://",
		"mem://host",
		"mem:///x",
		"mem://?a=b",
		"mem://u:p@",
		"nats://x",
	}
	urlfuzz.OpenURL(f, seeds, mem.OpenURL, urlfuzz.BrokerErrors()...)
}
