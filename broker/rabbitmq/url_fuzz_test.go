package rabbitmq_test

import (
	"testing"

	"github.com/herald-dev/herald/broker/rabbitmq"
	"github.com/herald-dev/herald/internal/urlfuzz"
)

// FuzzOpenURL feeds OpenURL arbitrary URLs with a context already cancelled,
// so that only the parsing path runs (nothing is dialled or started): it
// must not panic, must not block, and must fail with an error that wraps
// broker.ErrBadURL, broker.ErrInvalidOption, broker.ErrBadTopic or, for a
// URL that parsed, the context's error.
func FuzzOpenURL(f *testing.F) {
	seeds := []string{
		"amqp://",
		"amqp://guest:guest@127.0.0.1:5672/",
		"amqps://h/vhost",
		"amqp://h:x",
		"amqp://h?nope=1",
		"AMQP://h:5672/%2f",
		"redis://h",
	}
	urlfuzz.OpenURL(f, seeds, rabbitmq.OpenURL, urlfuzz.BrokerErrors()...)
}
