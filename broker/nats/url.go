package nats

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/internal/natsurl"
)

// Scheme is the URL scheme of this backend in a [broker.URLMux].
const Scheme = "nats"

// OpenURL opens a broker from a URL (see # URLs in the package
// documentation). Its signature is [broker.OpenFunc]: register it with
// mux.Register(nats.Scheme, nats.OpenURL).
func OpenURL(ctx context.Context, u *url.URL) (broker.Broker, error) {
	if err := broker.CheckQuery(u, "storage", "max_age", "dir", "prefix", "replicas"); err != nil {
		return nil, err
	}
	q := u.Query()
	var opts []Option
	switch s := q.Get("storage"); s {
	case "", "file":
	case "memory":
		opts = append(opts, WithMemoryStorage())
	default:
		return nil, fmt.Errorf("%w: storage=%q (want file or memory)", broker.ErrBadURL, s)
	}
	if v := q.Get("max_age"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%w: max_age=%q is not a duration >= 0 such as 72h", broker.ErrBadURL, v)
		}
		opts = append(opts, WithMaxAge(d))
	}
	if v := q.Get("prefix"); v != "" {
		opts = append(opts, WithPrefix(v))
	}
	if v := q.Get("replicas"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("%w: replicas=%q is not a number such as 3", broker.ErrBadURL, v)
		}
		if u.Host == "" && n > 1 {
			return nil, fmt.Errorf("%w: replicas=%d needs a cluster, and the embedded server (nats:// with no host) is a single one", broker.ErrBadURL, n)
		}
		opts = append(opts, WithReplicas(n))
	}
	if u.Host != "" && q.Has("dir") {
		return nil, fmt.Errorf("%w: dir is for the embedded server (nats:// with no host), not %q", broker.ErrBadURL, u.Redacted())
	}
	var servers string
	if u.Host != "" {
		var err error
		if servers, err = natsurl.Servers(u); err != nil {
			return nil, fmt.Errorf("%w: %v", broker.ErrBadURL, err)
		}
	}
	// Check the options now, and start or dial nothing for a context
	// already done: a bad URL is told apart from an unreachable server.
	check := defaults()
	for _, opt := range opts {
		if err := opt(&check); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nats: open: %w", err)
	}
	if u.Host != "" {
		return New(ctx, servers, opts...)
	}

	var sopts []natsserver.Option
	if dir := q.Get("dir"); dir != "" {
		sopts = append(sopts, natsserver.WithDataDir(dir))
	}
	srv, err := natsserver.Start(sopts...)
	if err != nil {
		return nil, fmt.Errorf("nats: embedded server: %w", err)
	}
	opts = append(opts, func(c *config) error { c.embedded = srv; return nil })
	b, err := New(ctx, srv.ClientURL(), opts...)
	if err != nil {
		srv.Shutdown()
		return nil, err
	}
	return b, nil
}
