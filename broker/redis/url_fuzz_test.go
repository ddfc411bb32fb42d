package redis_test

import (
	"testing"

	"github.com/herald-dev/herald/broker/redis"
	"github.com/herald-dev/herald/internal/urlfuzz"
)

// FuzzOpenURL feeds OpenURL arbitrary URLs with a context already cancelled,
// so that only the parsing path runs (nothing is dialled or started): it
// must not panic, must not block, and must fail with an error that wraps
// broker.ErrBadURL, broker.ErrInvalidOption, broker.ErrBadTopic or, for a
// URL that parsed, the context's error.
func FuzzOpenURL(f *testing.F) {
	seeds := []string{
		"redis://",
		"redis://127.0.0.1:6379/0",
		"rediss://u:p@h:1/2",
		"redis://h/x",
		"redis://h?nope=1",
		"redis://h?dial_timeout=1s",
		"amqp://h",
	}
	urlfuzz.OpenURL(f, seeds, redis.OpenURL, urlfuzz.BrokerErrors()...)
}
