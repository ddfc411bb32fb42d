package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/herald-dev/herald/registry"
	regetcd "github.com/herald-dev/herald/registry/etcd"
	"github.com/herald-dev/herald/registry/mem"
	regnats "github.com/herald-dev/herald/registry/nats"
)

// openRegistry opens the registry at rawURL:
//
//	mem://                 in this process only (a new, empty store)
//	nats://host:port       a JetStream KV bucket (?bucket=name, default herald_registry;
//	                       nats://a:4222,b:4222,c:4222?replicas=3 on a cluster)
//	etcd://host:port       etcd, leases for TTLs (see registry/etcd for its query)
//
// Errors never contain the URL's password.
func openRegistry(ctx context.Context, rawURL string) (registry.Registry, error) {
	if !strings.Contains(rawURL, "://") {
		return nil, fmt.Errorf("%w: registry URL has no scheme (want mem://, nats://host:port or etcd://host:port)", registry.ErrInvalid)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // it repeats the URL, password included
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: registry URL: %v", registry.ErrInvalid, err)
	}
	switch strings.ToLower(u.Scheme) {
	case mem.Scheme:
		r, err := mem.OpenURL(ctx, u)
		if err != nil {
			return nil, err
		}
		return r, nil
	case regnats.Scheme:
		r, err := regnats.OpenURL(ctx, u)
		if err != nil {
			return nil, err
		}
		return r, nil
	case regetcd.Scheme:
		r, err := regetcd.OpenURL(ctx, u)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
	return nil, fmt.Errorf("%w: unknown registry scheme %q in %q (want mem://, nats://host:port or etcd://host:port)", registry.ErrInvalid, u.Scheme, u.Redacted())
}
