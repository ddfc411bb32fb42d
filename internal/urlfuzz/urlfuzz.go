// Package urlfuzz is the fuzz check every OpenURL of Herald passes: the
// brokers' and the registries'. It lives in one place so that each
// backend's fuzz target only names its seeds, its opener and the sentinel
// errors its documentation promises.
package urlfuzz

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
)

// Closer is what an OpenURL returns: a broker or a registry.
type Closer interface{ Close(context.Context) error }

// BrokerErrors returns the sentinels a broker's OpenURL wraps for a URL it
// refuses, and more.
func BrokerErrors(more ...error) []error {
	return append([]error{broker.ErrBadURL, broker.ErrInvalidOption, broker.ErrBadTopic}, more...)
}

// OpenURL fuzzes open, starting from seeds, with a context already
// cancelled, so that only the parsing runs (nothing is dialled or started).
// For every input that url.Parse accepts, open must not panic, must return
// within 5 s, and must fail with an error that wraps one of sentinels or,
// for a URL that parsed, context.Canceled.
func OpenURL[T Closer](f *testing.F, seeds []string, open func(context.Context, *url.URL) (T, error), sentinels ...error) {
	f.Helper()
	for _, s := range seeds {
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
		c, err := open(ctx, u)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("OpenURL(%q) with a cancelled context took %v", raw, d)
		}
		if err == nil {
			_ = c.Close(ctx)
			t.Fatalf("OpenURL(%q) with a cancelled context succeeded", raw)
		}
		if errors.Is(err, context.Canceled) {
			return
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("OpenURL(%q): %v: wraps no documented sentinel", raw, err)
	})
}
