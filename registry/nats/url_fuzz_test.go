package nats_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/herald-dev/herald/registry"
	regnats "github.com/herald-dev/herald/registry/nats"
)

// FuzzOpenURL feeds OpenURL arbitrary URLs with a context already
// cancelled, so that only the parsing runs (nothing is dialled): it must
// not panic, must not block, and must fail with an error that wraps
// registry.ErrInvalid or, for a URL that parsed, the context's error.
func FuzzOpenURL(f *testing.F) {
	for _, s := range []string{"nats://127.0.0.1:4222", "nats://u:p@h:1?bucket=reg", "nats://a:1,b:2,c:3?replicas=3",
		"nats://a:1,b:2?replicas=3&bucket=x", "nats://", "nats://h:1?replicas=0", "nats://h:1?replicas=x", "nats://h:1?bucket=a.b",
		"nats://a:1,,b:2", "nats://a:1,nats://b:2", "nats://h:1/x", "nats://h:1?nope=1", "mem://"} {
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
		r, err := regnats.OpenURL(ctx, u)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("OpenURL(%q) with a cancelled context took %v", raw, d)
		}
		if err == nil {
			_ = r.Close(ctx)
			t.Fatalf("OpenURL(%q) with a cancelled context succeeded", raw)
		}
		if !errors.Is(err, registry.ErrInvalid) && !errors.Is(err, context.Canceled) {
			t.Fatalf("OpenURL(%q): %v: wraps no documented sentinel", raw, err)
		}
	})
}
