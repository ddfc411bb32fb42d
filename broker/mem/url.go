package mem

import (
	"context"
	"fmt"
	"net/url"

	"github.com/herald-dev/herald/broker"
)

// Scheme is the URL scheme of the in-process backend: "mem://".
const Scheme = "mem"

// OpenURL opens a new, isolated in-process broker for "mem://" (see
// [New]); it is a [broker.OpenFunc]. The URL takes no host, path or query
// parameter: each call makes its own bus, so two brokers opened from the same
// URL do not see each other's messages.
func OpenURL(ctx context.Context, u *url.URL) (broker.Broker, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mem: open: %w", err)
	}
	if u.Scheme != Scheme {
		return nil, fmt.Errorf("mem: open %q: %w: scheme is not %q", u.Redacted(), broker.ErrBadURL, Scheme)
	}
	if u.Host != "" || (u.Path != "" && u.Path != "/") || u.Opaque != "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("mem: open %q: %w: mem:// takes no host, path, user or fragment", u.Redacted(), broker.ErrBadURL)
	}
	if err := broker.CheckQuery(u); err != nil {
		return nil, fmt.Errorf("mem: open %q: %w", u.Redacted(), err)
	}
	return New(), nil
}
