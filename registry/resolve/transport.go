package resolve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/herald-dev/herald/registry"
)

// Transport is an [http.RoundTripper] that sends a request addressed to a
// service name (http://herald.user/…) to one of the service's live
// instances. A request whose host has a port or is an IP address is not
// resolved: it goes to Base as it is.
//
// When an instance refuses the connection, the Transport marks it failed
// (see [Resolver.Failed]) and sends the request to another instance, up to
// once per instance, provided its body can be read again (no body, or
// GetBody set, as http.NewRequest does for in-memory bodies). Other errors
// are returned as they are: the request may have reached the server.
//
// Set Registry; the other fields may be left zero. Do not change them after
// the first request.
type Transport struct {
	// Registry resolves the service names (required).
	Registry registry.Registry
	// Base sends the requests (default http.DefaultTransport).
	Base http.RoundTripper
	// Options configure the Resolver made for each service.
	Options []Option

	mu        sync.Mutex
	resolvers map[string]*Resolver
	closed    bool
}

var _ http.RoundTripper = (*Transport)(nil)

// RoundTrip sends req to an instance of the service its host names.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	host := req.URL.Host
	if host == "" || strings.Contains(host, ":") || net.ParseIP(strings.Trim(host, "[]")) != nil {
		return base.RoundTrip(req)
	}
	r, err := t.resolver(req.Context(), host)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < max(1, len(r.Instances())); attempt++ {
		inst, err := r.Pick()
		if err != nil {
			closeBody(req)
			return nil, err
		}
		u, err := instanceURL(inst, req.URL.Scheme)
		if err != nil {
			r.Failed(inst)
			lastErr = err
			continue
		}
		out := req.Clone(req.Context())
		out.URL.Scheme = u.Scheme
		out.URL.Host = u.Host
		if p := strings.TrimSuffix(u.Path, "/"); p != "" {
			out.URL.Path = p + out.URL.Path
			out.URL.RawPath = ""
		}
		out.Host = ""
		if attempt > 0 {
			if req.GetBody == nil && req.Body != nil && req.Body != http.NoBody {
				return nil, lastErr
			}
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				out.Body = body
			}
		}
		resp, err := base.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		if !refused(err) {
			return nil, err
		}
		r.Failed(inst)
		lastErr = fmt.Errorf("resolve %s: instance %s at %s: %w", host, inst.ID, u.Host, err)
	}
	return nil, lastErr
}

// resolver returns the resolver of service, making it the first time.
func (t *Transport) resolver(ctx context.Context, service string) (*Resolver, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("resolve %s: %w", service, registry.ErrClosed)
	}
	if r := t.resolvers[service]; r != nil {
		return r, nil
	}
	if t.Registry == nil {
		return nil, fmt.Errorf("resolve %s: %w: Transport has no Registry", service, registry.ErrInvalid)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := New(ctx, t.Registry, service, t.Options...)
	if err != nil {
		return nil, err
	}
	if t.resolvers == nil {
		t.resolvers = map[string]*Resolver{}
	}
	t.resolvers[service] = r
	return r, nil
}

// Resolvers returns the resolvers made so far, one per service.
func (t *Transport) Resolvers() []*Resolver {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*Resolver, 0, len(t.resolvers))
	for _, r := range t.resolvers {
		out = append(out, r)
	}
	return out
}

// Close stops the resolvers' watches; later requests to service names
// fail.
func (t *Transport) Close() error {
	t.mu.Lock()
	rs := t.resolvers
	t.resolvers = nil
	t.closed = true
	t.mu.Unlock()
	for _, r := range rs {
		_ = r.Close()
	}
	return nil
}

// refused reports whether err is a failure to connect: the request did not
// reach a server, so it may be sent elsewhere.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}
