package nats_test

import (
	"testing"

	"github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/internal/urlfuzz"
)

// FuzzOpenURL feeds OpenURL arbitrary URLs with a context already cancelled,
// so that only the parsing path runs (nothing is dialled or started): it
// must not panic, must not block, and must fail with an error that wraps
// broker.ErrBadURL, broker.ErrInvalidOption, broker.ErrBadTopic or, for a
// URL that parsed, the context's error.
func FuzzOpenURL(f *testing.F) {
	seeds := []string{
		"nats://",
		"nats://127.0.0.1:4222",
		"nats://u:p@h:1?storage=memory&max_age=72h&prefix=app",
		"nats://?dir=/tmp/x",
		"nats://h:1?dir=x",
		"nats://?storage=disk",
		"nats://?max_age=-1s",
		"nats://?prefix=a.b",
		"nats://?nope=1",
		"nats://a:1,b:2",
		"nats://a:1,b:2,c:3?replicas=3",
		"nats://u:p@a:1,b:2?replicas=5&storage=memory",
		"nats://?replicas=3",
		"nats://?replicas=1",
		"nats://h:1?replicas=0",
		"nats://h:1?replicas=x",
		"nats://h:1?replicas=6",
		"nats://a:1,,b:2",
		"nats://a:1,nats://b:2",
		"nats://h:1/x",
	}
	urlfuzz.OpenURL(f, seeds, nats.OpenURL, urlfuzz.BrokerErrors()...)
}
