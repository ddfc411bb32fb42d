package resolve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/herald-dev/herald/registry"
)

// DefaultCooldown is how long an instance reported failed is skipped.
const DefaultCooldown = 5 * time.Second

// ErrNoInstance is returned when a service has no live instance; it wraps
// [registry.ErrNotFound].
var ErrNoInstance = fmt.Errorf("resolve: no live instance: %w", registry.ErrNotFound)

// Option configures [New].
type Option func(*config) error

type config struct {
	cooldown time.Duration
	log      *slog.Logger
}

// WithCooldown sets how long an instance reported with [Resolver.Failed]
// is skipped (d > 0).
func WithCooldown(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: cooldown must be > 0, not %v", registry.ErrInvalid, d)
		}
		c.cooldown = d
		return nil
	}
}

// WithLogger sets the logger (discard by default).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", registry.ErrInvalid)
		}
		c.log = l
		return nil
	}
}

// Resolver keeps the live instances of one service and picks one per call.
type Resolver struct {
	reg     registry.Registry
	service string
	cfg     config

	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	insts []registry.Instance  // sorted by ID
	down  map[string]time.Time // instance ID → skipped until
	next  int
	err   error // why the watch stopped, once it has
}

// New returns a resolver of service: it looks the service up (bounded by
// ctx; a service with no instance yet is not an error) and watches it until
// Close.
func New(ctx context.Context, reg registry.Registry, service string, opts ...Option) (*Resolver, error) {
	if reg == nil {
		return nil, fmt.Errorf("resolve: %w: nil registry", registry.ErrInvalid)
	}
	if err := registry.ValidateName(service); err != nil {
		return nil, fmt.Errorf("resolve: %w", err)
	}
	c := config{cooldown: DefaultCooldown, log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&c); err != nil {
			return nil, err
		}
	}
	insts, err := reg.Lookup(ctx, service)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return nil, fmt.Errorf("resolve %s: %w", service, err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	ch, err := reg.Watch(wctx, service)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("resolve %s: %w", service, err)
	}
	r := &Resolver{reg: reg, service: service, cfg: c, cancel: cancel, done: make(chan struct{}), down: map[string]time.Time{}}
	r.set(insts)
	go r.watch(wctx, ch)
	return r, nil
}

// set replaces the instances.
func (r *Resolver) set(insts []registry.Instance) {
	insts = slices.Clone(insts)
	slices.SortFunc(insts, func(a, b registry.Instance) int { return strings.Compare(a.ID, b.ID) })
	r.mu.Lock()
	r.insts = insts
	r.mu.Unlock()
}

// watch applies the registry's events until Close, watching again with
// backoff when a watch ends early.
func (r *Resolver) watch(ctx context.Context, ch <-chan registry.Event) {
	defer close(r.done)
	backoff := 100 * time.Millisecond
	for {
		for ev := range ch {
			r.apply(ev)
		}
		if ctx.Err() != nil {
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			// Start again from a fresh listing: what changed while the watch
			// was down is in it.
			insts, err := r.reg.Lookup(ctx, r.service)
			if err != nil && !errors.Is(err, registry.ErrNotFound) {
				r.cfg.log.Warn("resolve: lookup failed; keeping the instances known", "service", r.service, "err", err)
				if errors.Is(err, registry.ErrClosed) {
					r.stop(err)
					return
				}
				continue
			}
			var werr error
			ch, werr = r.reg.Watch(ctx, r.service)
			if werr != nil {
				if errors.Is(werr, registry.ErrClosed) {
					r.stop(werr)
					return
				}
				continue
			}
			r.set(insts)
			backoff = 100 * time.Millisecond
			break
		}
	}
}

func (r *Resolver) stop(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// apply applies one watch event.
func (r *Resolver) apply(ev registry.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.insts, func(in registry.Instance) bool { return in.ID == ev.Instance.ID })
	switch ev.Type {
	case registry.Added:
		delete(r.down, ev.Instance.ID) // registered again: worth a try
		if i >= 0 {
			r.insts[i] = ev.Instance
			return
		}
		r.insts = append(r.insts, ev.Instance)
		slices.SortFunc(r.insts, func(a, b registry.Instance) int { return strings.Compare(a.ID, b.ID) })
	case registry.Removed:
		if i >= 0 {
			r.insts = slices.Delete(r.insts, i, i+1)
		}
		delete(r.down, ev.Instance.ID)
	}
}

// Instances returns the live instances, sorted by ID.
func (r *Resolver) Instances() []registry.Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.insts)
}

// Pick returns the next instance, round robin, skipping those reported
// failed within the cooldown. When every instance is cooling down it picks
// among them all rather than fail: a listed instance may have recovered.
// It returns [ErrNoInstance] when the service has none.
func (r *Resolver) Pick() (registry.Instance, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.insts) == 0 {
		return registry.Instance{}, fmt.Errorf("resolve %s: %w", r.service, ErrNoInstance)
	}
	now := time.Now()
	for range len(r.insts) {
		in := r.insts[r.next%len(r.insts)]
		r.next++
		if until, ok := r.down[in.ID]; !ok || now.After(until) {
			delete(r.down, in.ID)
			return in, nil
		}
	}
	in := r.insts[r.next%len(r.insts)]
	r.next++
	return in, nil
}

// Failed reports that inst could not be reached: Pick skips it for the
// cooldown, unless the registry lists it again meanwhile.
func (r *Resolver) Failed(inst registry.Instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down[inst.ID] = time.Now().Add(r.cfg.cooldown)
	r.cfg.log.Debug("resolve: instance failed; skipping it for a while", "service", r.service, "instance", inst.ID, "cooldown", r.cfg.cooldown)
}

// BaseURL picks an instance and returns its base URL: its address when it
// is a URL, else "http://" and its host:port.
func (r *Resolver) BaseURL() (string, error) {
	in, err := r.Pick()
	if err != nil {
		return "", err
	}
	u, err := instanceURL(in, "http")
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// Close stops watching the service.
func (r *Resolver) Close() error {
	r.cancel()
	<-r.done
	return nil
}

// instanceURL returns the base URL of inst: its address parsed as a URL
// when it has a scheme, else scheme://addr.
func instanceURL(inst registry.Instance, scheme string) (*url.URL, error) {
	if strings.Contains(inst.Addr, "://") {
		u, err := url.Parse(inst.Addr)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("resolve %s: instance %s has a bad address %q", inst.Service, inst.ID, inst.Addr)
		}
		return u, nil
	}
	if _, _, err := net.SplitHostPort(inst.Addr); err != nil {
		return nil, fmt.Errorf("resolve %s: instance %s has a bad address %q: %v", inst.Service, inst.ID, inst.Addr, err)
	}
	return &url.URL{Scheme: scheme, Host: inst.Addr}, nil
}
