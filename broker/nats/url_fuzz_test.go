package nats_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/nats"
)

// FuzzOpenURL feeds OpenURL arbitrary URLs with a context already cancelled,
// so that only the parsing path runs (nothing is dialled or started): it
// must not panic, must not block, and must fail with an error that wraps
// broker.ErrBadURL, broker.ErrInvalidOption, broker.ErrBadTopic or, for a
// URL that parsed, the context's error.
func FuzzOpenURL(f *testing.F) {
	for _, s := range []string{"nats://", "nats://127.0.0.1:4222", "nats://u:p@h:1?storage=memory&max_age=72h&prefix=app", "nats://?dir=/tmp/x", "nats://h:1?dir=x", "nats://?storage=disk", "nats://?max_age=-1s", "nats://?prefix=a.b", "nats://?nope=1", "nats://a:1,b:2",
		"nats://a:1,b:2,c:3?replicas=3", "nats://u:p@a:1,b:2?replicas=5&storage=memory", "nats://?replicas=3", "nats://?replicas=1",
		"nats://h:1?replicas=0", "nats://h:1?replicas=x", "nats://h:1?replicas=6", "nats://a:1,,b:2", "nats://a:1,nats://b:2", "nats://h:1/x"} {
		f.Add(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		start := time.Now()
		b, err := nats.OpenURL(ctx, u)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("OpenURL(%q) with a cancelled context took %v", raw, d)
		}
		if err == nil {
			_ = b.Close(ctx)
			t.Fatalf("OpenURL(%q) with a cancelled context succeeded", raw)
		}
		if !errors.Is(err, broker.ErrBadURL) && !errors.Is(err, broker.ErrInvalidOption) && !errors.Is(err, broker.ErrBadTopic) &&
			!errors.Is(err, context.Canceled) {
			t.Fatalf("OpenURL(%q): %v: wraps no documented sentinel", raw, err)
		}
	})
}
