package mem

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/herald-dev/herald/registry"
)

// Scheme is the URL scheme of the in-process registry.
const Scheme = "mem"

var _ registry.Registry = (*Registry)(nil)

// Registry is one client of a [Store]: what it registers it renews, and
// deregisters on [Registry.Close]. It is safe for concurrent use.
type Registry struct {
	store *Store
	log   *slog.Logger

	mu     sync.Mutex
	leases map[instanceKey]*lease
	closed bool
	done   chan struct{} // closed by Close and Kill: ends heartbeats and watchers
	wg     sync.WaitGroup
}

type instanceKey struct{ service, id string }

// lease is the heartbeat of one registration.
type lease struct {
	inst registry.Instance
	stop chan struct{}
	done chan struct{}
}

// Option configures [New].
type Option func(*Registry) error

// WithStore makes the registry a client of s, so that it sees what the other
// clients of s register. Without it, New makes a new store.
func WithStore(s *Store) Option {
	return func(r *Registry) error {
		if s == nil {
			return fmt.Errorf("%w: nil store", registry.ErrInvalid)
		}
		r.store = s
		return nil
	}
}

// WithLogger sets the logger (discard by default).
func WithLogger(l *slog.Logger) Option {
	return func(r *Registry) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", registry.ErrInvalid)
		}
		r.log = l
		return nil
	}
}

// New returns a registry client, of a new store unless [WithStore] says
// which.
func New(opts ...Option) (*Registry, error) {
	r := &Registry{
		log:    slog.New(slog.DiscardHandler),
		leases: map[instanceKey]*lease{},
		done:   make(chan struct{}),
	}
	for _, opt := range opts {
		if err := opt(r); err != nil {
			return nil, err
		}
	}
	if r.store == nil {
		r.store = NewStore()
	}
	return r, nil
}

// OpenURL opens "mem://" (no host, path or query): a client of a new store.
func OpenURL(_ context.Context, u *url.URL) (*Registry, error) {
	if u.Scheme != Scheme || u.Host != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%w: mem registry URL %q must be plain %s://", registry.ErrInvalid, u.Redacted(), Scheme)
	}
	return New()
}

// Store returns the store r is a client of.
func (r *Registry) Store() *Store { return r.store }

// Register lists inst and renews its lease every third of its TTL until
// Deregister, Close or Kill.
func (r *Registry) Register(ctx context.Context, inst registry.Instance, opts ...registry.RegisterOption) error {
	o, err := registry.NewRegisterOptions(inst, opts...)
	if err != nil {
		return fmt.Errorf("mem: register: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: register %s/%s: %w", inst.Service, inst.ID, err)
	}
	inst = clone(inst)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("mem: register %s/%s: %w", inst.Service, inst.ID, registry.ErrClosed)
	}
	k := instanceKey{inst.Service, inst.ID}
	if old := r.leases[k]; old != nil {
		old.end()
	}
	r.store.put(inst, o.TTL)
	l := &lease{inst: inst, stop: make(chan struct{}), done: make(chan struct{})}
	r.leases[k] = l
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.heartbeat(l, o.TTL)
	}()
	r.log.Debug("registry: registered", "service", inst.Service, "instance", inst.ID, "addr", inst.Addr, "ttl", o.TTL)
	return nil
}

// heartbeat renews l every third of ttl until it is ended or the registry
// closed or killed.
func (r *Registry) heartbeat(l *lease, ttl time.Duration) {
	defer close(l.done)
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.store.put(l.inst, ttl)
		case <-l.stop:
			return
		case <-r.done:
			return
		}
	}
}

// end stops the heartbeat and waits until it has stopped, so no renewal
// lands after it returns.
func (l *lease) end() {
	close(l.stop)
	<-l.done
}

// Deregister stops renewing inst and removes it from the store at once. An
// instance that is not listed is not an error.
func (r *Registry) Deregister(ctx context.Context, inst registry.Instance) error {
	if err := registry.ValidateInstance(inst); err != nil {
		return fmt.Errorf("mem: deregister: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("mem: deregister %s/%s: %w", inst.Service, inst.ID, registry.ErrClosed)
	}
	k := instanceKey{inst.Service, inst.ID}
	if l := r.leases[k]; l != nil {
		l.end()
		delete(r.leases, k)
	}
	r.store.remove(inst.Service, inst.ID)
	r.log.Debug("registry: deregistered", "service", inst.Service, "instance", inst.ID)
	return nil
}

// Lookup returns the listed instances of service, sorted by ID.
func (r *Registry) Lookup(ctx context.Context, service string) ([]registry.Instance, error) {
	if err := registry.ValidateName(service); err != nil {
		return nil, fmt.Errorf("mem: lookup: %w", err)
	}
	if err := r.check(ctx); err != nil {
		return nil, fmt.Errorf("mem: lookup %q: %w", service, err)
	}
	insts := r.store.lookup(service)
	if len(insts) == 0 {
		return nil, fmt.Errorf("mem: lookup %q: %w", service, registry.ErrNotFound)
	}
	return insts, nil
}

// Watch reports the changes to service's instances, starting with those
// listed now, until ctx is done or r closed. Events queue without bound
// while the caller does not read them, so the store never waits for a
// watcher.
func (r *Registry) Watch(ctx context.Context, service string) (<-chan registry.Event, error) {
	if err := registry.ValidateName(service); err != nil {
		return nil, fmt.Errorf("mem: watch: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mem: watch %q: %w", service, err)
	}
	if r.closed {
		return nil, fmt.Errorf("mem: watch %q: %w", service, registry.ErrClosed)
	}
	w := newWatcher()
	r.store.watch(service, w)
	out := make(chan registry.Event)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.store.unwatch(service, w)
		w.run(ctx, r.done, out)
	}()
	return out, nil
}

// Close deregisters what r registered, ends its watchers and heartbeats,
// and waits for them, bounded by ctx. Calls after the first return nil.
func (r *Registry) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for k, l := range r.leases {
		l.end()
		r.store.remove(k.service, k.id)
	}
	r.leases = nil
	close(r.done)
	r.mu.Unlock()
	return r.wait(ctx)
}

// Kill stops r as a crashed process would stop: heartbeats and watchers end,
// but nothing is deregistered, so r's instances stay listed until their
// TTL runs out. Later calls on r return [registry.ErrClosed]. It exists to
// test what the rest of a system does when an instance dies.
func (r *Registry) Kill() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.leases = nil
	close(r.done)
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *Registry) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mem: close: %w", ctx.Err())
	}
}

func (r *Registry) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return registry.ErrClosed
	}
	return nil
}
