package httpbroker_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	httpbroker "github.com/herald-dev/herald/broker/http"
	"github.com/herald-dev/herald/registry"
)

// errNoRegistry stops OpenURLWith once the URL is parsed: the registry
// opener is the first thing it calls after parsing.
var errNoRegistry = errors.New("fuzz: no registry")

// FuzzOpenURL feeds OpenURL arbitrary URLs with a context already cancelled,
// so that only the parsing path runs (nothing is dialled or started): it
// must not panic, must not block, and must fail with an error that wraps
// broker.ErrBadURL, broker.ErrInvalidOption, broker.ErrBadTopic or, for a
// URL that parsed, the context's error.
func FuzzOpenURL(f *testing.F) {
	for _, s := range []string{"http://", "https://", "http:///path?spool=", "http://?registry=mem://&listen=127.0.0.1:0&ttl=5s&spool=", "http://?secret=", "http://?secret=hunter2hunter2hunter2&registry=", "http://host:1?spool=", "http://?max_message=x", "http://?replay_window=-1s", "http://?cert=/nonexistent"} {
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
		b, err := httpbroker.OpenURLWith(func(context.Context, string) (registry.Registry, error) { return nil, errNoRegistry })(ctx, u)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("OpenURL(%q) with a cancelled context took %v", raw, d)
		}
		if err == nil {
			_ = b.Close(ctx)
			t.Fatalf("OpenURL(%q) with a cancelled context succeeded", raw)
		}
		if !errors.Is(err, broker.ErrBadURL) && !errors.Is(err, broker.ErrInvalidOption) && !errors.Is(err, broker.ErrBadTopic) &&
			!errors.Is(err, context.Canceled) && !errors.Is(err, errNoRegistry) {
			t.Fatalf("OpenURL(%q): %v: wraps no documented sentinel", raw, err)
		}
	})
}
