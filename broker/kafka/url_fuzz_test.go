package kafka_test

import (
	"testing"

	"github.com/herald-dev/herald/broker/kafka"
	"github.com/herald-dev/herald/internal/urlfuzz"
)

// FuzzOpenURL feeds OpenURL arbitrary URLs with a context already cancelled,
// so that only the parsing path runs (nothing is dialled or started): it
// must not panic, must not block, and must fail with an error that wraps
// broker.ErrBadURL, broker.ErrInvalidOption, broker.ErrBadTopic or, for a
// URL that parsed, the context's error.
func FuzzOpenURL(f *testing.F) {
	seeds := []string{
		"kafka://",
		"kafka://h:1",
		"kafka://h:1/path",
		"kafka://h:1?nope=1",
		"kafka://h:1?partitions=x",
		"kafka://h:1?sasl=plain",
		"kafka://h:1?tls=maybe",
		"kafka://u:p@h:1,h2:2?tls=true",
	}
	urlfuzz.OpenURL(f, seeds, kafka.OpenURL, urlfuzz.BrokerErrors()...)
}
