package kafka_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/kafka"
)

// FuzzOpenURL feeds OpenURL arbitrary URLs with a context already cancelled,
// so that only the parsing path runs (nothing is dialled or started): it
// must not panic, must not block, and must fail with an error that wraps
// broker.ErrBadURL, broker.ErrInvalidOption, broker.ErrBadTopic or, for a
// URL that parsed, the context's error.
func FuzzOpenURL(f *testing.F) {
	for _, s := range []string{"kafka://", "kafka://h:1", "kafka://h:1/path", "kafka://h:1?nope=1", "kafka://h:1?partitions=x", "kafka://h:1?sasl=plain", "kafka://h:1?tls=maybe", "kafka://u:p@h:1,h2:2?tls=true"} {
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
		b, err := kafka.OpenURL(ctx, u)
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
