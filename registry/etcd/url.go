package etcd

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/herald-dev/herald/registry"
)

// Scheme is the URL scheme of the etcd registry.
const Scheme = "etcd"

// OpenURL opens the registry at u, "etcd://host:port[,host:port…]" with the
// query parameters "prefix" and "dial_timeout" (see the package
// documentation), and checks that etcd answers within ctx and the dial
// timeout. Errors never contain the URL's password.
func OpenURL(ctx context.Context, u *url.URL) (*Registry, error) {
	opts, err := urlOptions(u)
	if err != nil {
		return nil, err
	}
	r, err := New(opts...)
	if err != nil {
		return nil, err
	}
	if err := r.ping(ctx); err != nil {
		_ = r.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return r, nil
}

// urlOptions turns u into options, checking every part of it.
func urlOptions(u *url.URL) ([]Option, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: etcd URL %q: %s", registry.ErrInvalid, u.Redacted(), fmt.Sprintf(format, args...))
	}
	if u.Scheme != Scheme {
		return nil, bad("scheme is not %q", Scheme)
	}
	if u.Host == "" {
		return nil, bad("no host (want etcd://host:port)")
	}
	if (u.Path != "" && u.Path != "/") || u.Fragment != "" || u.Opaque != "" {
		return nil, bad("takes no path or fragment")
	}
	var endpoints []string
	for _, h := range strings.Split(u.Host, ",") {
		if h == "" {
			return nil, bad("empty endpoint")
		}
		if !strings.Contains(h, ":") {
			h += ":2379"
		}
		endpoints = append(endpoints, h)
	}
	opts := []Option{WithEndpoints(endpoints...)}
	if u.User != nil {
		pw, _ := u.User.Password()
		opts = append(opts, WithAuth(u.User.Username(), pw))
	}
	known := []string{"prefix", "dial_timeout"}
	for k, v := range u.Query() {
		if !slices.Contains(known, k) {
			return nil, bad("unknown query parameter %q (known: %s)", k, strings.Join(known, ", "))
		}
		if len(v) != 1 {
			return nil, bad("query parameter %q given %d times", k, len(v))
		}
		switch k {
		case "prefix":
			opts = append(opts, WithPrefix(v[0]))
		case "dial_timeout":
			d, err := time.ParseDuration(v[0])
			if err != nil {
				return nil, bad("dial_timeout %q is not a duration", v[0])
			}
			opts = append(opts, WithDialTimeout(d))
		}
	}
	return opts, nil
}
