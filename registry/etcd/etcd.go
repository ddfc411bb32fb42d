package etcd

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/herald-dev/herald/registry"
)

var _ registry.Registry = (*Registry)(nil)

// Registry is a client of the registrations kept in etcd. What it registers
// it renews, and deregisters on [Registry.Close]. It is safe for concurrent
// use.
type Registry struct {
	cli    *clientv3.Client
	own    bool // the client is ours to close
	prefix string
	log    *slog.Logger
	dialTO time.Duration

	regMu sync.Mutex // serialises Register and Deregister, so leases replace each other in order

	mu     sync.Mutex
	leases map[instanceKey]*lease
	closed bool
	done   chan struct{} // closed by Close and Kill: ends heartbeats and watchers
	wg     sync.WaitGroup
}

type instanceKey struct{ service, id string }

// lease keeps one registration alive.
type lease struct {
	inst   registry.Instance
	value  string
	ttl    int64 // seconds
	mu     sync.Mutex
	id     clientv3.LeaseID // the current lease (it changes when renewed by a new grant)
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a registry of the etcd [WithClient] gives, or of a client of
// its own connected to [WithEndpoints]. It does not wait for etcd to answer
// (see [OpenURL], which does).
func New(opts ...Option) (*Registry, error) {
	c := config{dialTimeout: DefaultDialTimeout, prefix: DefaultPrefix, log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&c); err != nil {
			return nil, err
		}
	}
	r := &Registry{
		cli:    c.client,
		prefix: c.prefix,
		log:    c.log,
		dialTO: c.dialTimeout,
		leases: map[instanceKey]*lease{},
		done:   make(chan struct{}),
	}
	if r.cli == nil {
		if len(c.endpoints) == 0 {
			return nil, fmt.Errorf("%w: etcd: no client and no endpoints (use WithClient or WithEndpoints)", registry.ErrInvalid)
		}
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   c.endpoints,
			DialTimeout: c.dialTimeout,
			Username:    c.username,
			Password:    c.password,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			return nil, fmt.Errorf("etcd: connect: %w", err)
		}
		r.cli, r.own = cli, true
	}
	return r, nil
}

// Client returns the etcd client the registry uses.
func (r *Registry) Client() *clientv3.Client { return r.cli }

// ping checks that etcd answers, bounded by ctx and the dial timeout.
func (r *Registry) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.dialTO)
	defer cancel()
	if _, err := r.cli.Get(ctx, r.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("etcd: no answer from %s: %w", strings.Join(r.cli.Endpoints(), ","), err)
	}
	return nil
}

func (r *Registry) serviceKey(service string) string { return r.prefix + service + "/" }
func (r *Registry) key(service, id string) string    { return r.prefix + service + "/" + id }

// Register lists inst under a lease of its TTL and keeps the lease alive
// until Deregister, Close or Kill.
func (r *Registry) Register(ctx context.Context, inst registry.Instance, opts ...registry.RegisterOption) error {
	o, err := registry.NewRegisterOptions(inst, opts...)
	if err != nil {
		return fmt.Errorf("etcd: register: %w", err)
	}
	inst.Metadata = maps.Clone(inst.Metadata)
	value, err := json.Marshal(inst)
	if err != nil {
		return fmt.Errorf("etcd: register %s/%s: %w", inst.Service, inst.ID, err)
	}
	r.regMu.Lock()
	defer r.regMu.Unlock()
	if err := r.check(ctx); err != nil {
		return fmt.Errorf("etcd: register %s/%s: %w", inst.Service, inst.ID, err)
	}
	l := &lease{
		inst:  inst,
		value: string(value),
		ttl:   int64(math.Ceil(o.TTL.Seconds())),
		done:  make(chan struct{}),
	}
	if err := r.put(ctx, l); err != nil {
		return fmt.Errorf("etcd: register %s/%s: %w", inst.Service, inst.ID, err)
	}

	k := instanceKey{inst.Service, inst.ID}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.revoke(context.WithoutCancel(ctx), l.id)
		return fmt.Errorf("etcd: register %s/%s: %w", inst.Service, inst.ID, registry.ErrClosed)
	}
	old := r.leases[k]
	r.leases[k] = l
	hctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.heartbeat(hctx, l)
	}()
	r.mu.Unlock()

	if old != nil {
		// The key now belongs to the new lease: revoking the old one leaves
		// it in place.
		old.stop()
		r.revoke(ctx, old.current())
	}
	r.log.Debug("registry: registered", "service", inst.Service, "instance", inst.ID, "addr", inst.Addr, "ttl", o.TTL)
	return nil
}

// put grants a lease of l.ttl and puts l's key on it.
func (r *Registry) put(ctx context.Context, l *lease) error {
	g, err := r.cli.Grant(ctx, l.ttl)
	if err != nil {
		return fmt.Errorf("grant lease: %w", err)
	}
	if _, err := r.cli.Put(ctx, r.key(l.inst.Service, l.inst.ID), l.value, clientv3.WithLease(g.ID)); err != nil {
		r.revoke(ctx, g.ID)
		return fmt.Errorf("put: %w", err)
	}
	l.mu.Lock()
	l.id = g.ID
	l.mu.Unlock()
	return nil
}

func (l *lease) current() clientv3.LeaseID {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.id
}

// stop ends the heartbeat and waits for it.
func (l *lease) stop() {
	l.cancel()
	<-l.done
}

// heartbeat keeps l's lease alive until ctx ends. When the lease is lost
// (it expired while etcd could not be reached), the instance is put again on
// a new lease, with backoff between failed tries.
func (r *Registry) heartbeat(ctx context.Context, l *lease) {
	defer close(l.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		ch, err := r.cli.KeepAlive(ctx, l.current())
		if err == nil {
			for range ch { //nolint:revive // each response is a renewal; nothing to do with it
			}
		}
		if ctx.Err() != nil {
			return
		}
		// The keep-alive ended without our asking: the lease is gone or the
		// client broke. Register again on a fresh lease.
		r.log.Warn("registry: lease lost, registering again", "service", l.inst.Service, "instance", l.inst.ID, "err", err)
		for ctx.Err() == nil {
			pctx, cancel := context.WithTimeout(ctx, r.dialTO)
			err := r.put(pctx, l)
			cancel()
			if err == nil {
				backoff = 100 * time.Millisecond
				break
			}
			r.log.Warn("registry: register again failed", "service", l.inst.Service, "instance", l.inst.ID, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// revoke revokes the lease id, logging a failure: an unrevoked lease only
// expires later.
func (r *Registry) revoke(ctx context.Context, id clientv3.LeaseID) {
	if id == clientv3.NoLease {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.dialTO)
	defer cancel()
	if _, err := r.cli.Revoke(ctx, id); err != nil {
		r.log.Debug("registry: revoke lease", "lease", int64(id), "err", err)
	}
}

// endRegistration stops renewing the instance k this client registered, if
// it did, and returns its lease (nil if none) without revoking it.
func (r *Registry) endRegistration(k instanceKey) *lease {
	r.mu.Lock()
	l := r.leases[k]
	delete(r.leases, k)
	r.mu.Unlock()
	if l != nil {
		l.stop()
	}
	return l
}

// Deregister stops renewing inst (when this client registered it) and
// deletes it at once. An instance that is not listed is not an error.
func (r *Registry) Deregister(ctx context.Context, inst registry.Instance) error {
	if err := registry.ValidateInstance(inst); err != nil {
		return fmt.Errorf("etcd: deregister: %w", err)
	}
	r.regMu.Lock()
	defer r.regMu.Unlock()
	if err := r.check(ctx); err != nil {
		return fmt.Errorf("etcd: deregister %s/%s: %w", inst.Service, inst.ID, err)
	}
	k := instanceKey{inst.Service, inst.ID}
	l := r.endRegistration(k)
	if _, err := r.cli.Delete(ctx, r.key(inst.Service, inst.ID)); err != nil {
		return fmt.Errorf("etcd: deregister %s/%s: %w", inst.Service, inst.ID, err)
	}
	if l != nil {
		r.revoke(ctx, l.current())
	}
	r.log.Debug("registry: deregistered", "service", inst.Service, "instance", inst.ID)
	return nil
}

// Lookup returns the listed instances of service, sorted by ID.
func (r *Registry) Lookup(ctx context.Context, service string) ([]registry.Instance, error) {
	if err := registry.ValidateName(service); err != nil {
		return nil, fmt.Errorf("etcd: lookup: %w", err)
	}
	if err := r.check(ctx); err != nil {
		return nil, fmt.Errorf("etcd: lookup %q: %w", service, err)
	}
	insts, _, err := r.list(ctx, service)
	if err != nil {
		return nil, fmt.Errorf("etcd: lookup %q: %w", service, err)
	}
	if len(insts) == 0 {
		return nil, fmt.Errorf("etcd: lookup %q: %w", service, registry.ErrNotFound)
	}
	return sorted(insts), nil
}

// list reads the instances of service and the revision read.
func (r *Registry) list(ctx context.Context, service string) (map[string]registry.Instance, int64, error) {
	resp, err := r.cli.Get(ctx, r.serviceKey(service), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, err
	}
	insts := make(map[string]registry.Instance, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		inst, ok := r.decode(service, kv.Key, kv.Value)
		if ok {
			insts[inst.ID] = inst
		}
	}
	return insts, resp.Header.Revision, nil
}

// decode reads one key's instance; a key that does not hold one of
// service's instances (written by something else) is skipped and logged.
func (r *Registry) decode(service string, key, value []byte) (registry.Instance, bool) {
	var inst registry.Instance
	id := strings.TrimPrefix(string(key), r.serviceKey(service))
	if err := json.Unmarshal(value, &inst); err != nil || inst.Service != service || inst.ID != id {
		r.log.Warn("registry: skipping a key that holds no instance of the service", "key", string(key), "service", service)
		return registry.Instance{}, false
	}
	return inst, true
}

// Watch reports the changes to service's instances, starting with those
// listed now, until ctx is done or r closed.
func (r *Registry) Watch(ctx context.Context, service string) (<-chan registry.Event, error) {
	if err := registry.ValidateName(service); err != nil {
		return nil, fmt.Errorf("etcd: watch: %w", err)
	}
	if err := r.check(ctx); err != nil {
		return nil, fmt.Errorf("etcd: watch %q: %w", service, err)
	}
	insts, rev, err := r.list(ctx, service)
	if err != nil {
		return nil, fmt.Errorf("etcd: watch %q: %w", service, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		cancel()
		return nil, fmt.Errorf("etcd: watch %q: %w", service, registry.ErrClosed)
	}
	r.wg.Add(1)
	r.mu.Unlock()
	out := make(chan registry.Event)
	go func() {
		defer r.wg.Done()
		defer cancel()
		defer close(out)
		go func() { // Close ends the watch too

			select {
			case <-r.done:
				cancel()
			case <-wctx.Done():
			}
		}()
		w := &watcher{r: r, service: service, known: map[string]registry.Instance{}, out: out}
		w.run(wctx, insts, rev)
	}()
	return out, nil
}

// watcher is one Watch: what it has reported, so that it reports changes
// only.
type watcher struct {
	r       *Registry
	service string
	known   map[string]registry.Instance
	out     chan<- registry.Event
}

// run reports the initial listing, then the changes from rev+1 on, reading
// the listing again when the watch breaks.
func (w *watcher) run(ctx context.Context, insts map[string]registry.Instance, rev int64) {
	if !w.sync(ctx, insts) {
		return
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		wch := w.r.cli.Watch(clientv3.WithRequireLeader(ctx), w.r.serviceKey(w.service), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if err := resp.Err(); err != nil {
				w.r.log.Debug("registry: watch broke", "service", w.service, "err", err)
				break
			}
			for _, ev := range resp.Events {
				if !w.apply(ctx, ev) {
					return
				}
			}
			rev = resp.Header.Revision
		}
		if ctx.Err() != nil {
			return
		}
		// The watch ended (compaction, lost leader, closed connection):
		// read the listing again and report what changed meanwhile.
		for ctx.Err() == nil {
			lctx, cancel := context.WithTimeout(ctx, w.r.dialTO)
			insts, r, err := w.r.list(lctx, w.service)
			cancel()
			if err == nil {
				rev = r
				if !w.sync(ctx, insts) {
					return
				}
				backoff = 100 * time.Millisecond
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// sync reports the difference between what was reported and insts.
func (w *watcher) sync(ctx context.Context, insts map[string]registry.Instance) bool {
	for _, id := range slices.Sorted(maps.Keys(w.known)) {
		if _, ok := insts[id]; !ok {
			if !w.send(ctx, registry.Event{Type: registry.Removed, Instance: w.known[id]}) {
				return false
			}
			delete(w.known, id)
		}
	}
	for _, inst := range sorted(insts) {
		if old, ok := w.known[inst.ID]; ok && equal(old, inst) {
			continue
		}
		w.known[inst.ID] = inst
		if !w.send(ctx, registry.Event{Type: registry.Added, Instance: clone(inst)}) {
			return false
		}
	}
	return true
}

// apply reports one etcd event, if it changes what was reported.
func (w *watcher) apply(ctx context.Context, ev *clientv3.Event) bool {
	switch ev.Type {
	case clientv3.EventTypePut:
		inst, ok := w.r.decode(w.service, ev.Kv.Key, ev.Kv.Value)
		if !ok {
			return true
		}
		if old, ok := w.known[inst.ID]; ok && equal(old, inst) {
			return true
		}
		w.known[inst.ID] = inst
		return w.send(ctx, registry.Event{Type: registry.Added, Instance: clone(inst)})
	case clientv3.EventTypeDelete:
		id := strings.TrimPrefix(string(ev.Kv.Key), w.r.serviceKey(w.service))
		old, ok := w.known[id]
		if !ok {
			return true
		}
		delete(w.known, id)
		return w.send(ctx, registry.Event{Type: registry.Removed, Instance: old})
	}
	return true
}

func (w *watcher) send(ctx context.Context, ev registry.Event) bool {
	select {
	case w.out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// Close revokes the leases of what r registered (which removes the
// instances at once), ends its watchers and heartbeats, and closes its own
// etcd client, bounded by ctx. Calls after the first return nil.
func (r *Registry) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	leases := r.leases
	r.leases = nil
	close(r.done)
	r.mu.Unlock()

	var errs []error
	for _, l := range leases {
		l.stop()
		rctx, cancel := context.WithTimeout(ctx, r.dialTO)
		if _, err := r.cli.Revoke(rctx, l.current()); err != nil {
			errs = append(errs, fmt.Errorf("etcd: close: revoke the lease of %s/%s: %w", l.inst.Service, l.inst.ID, err))
		}
		cancel()
	}
	if err := r.wait(ctx); err != nil {
		errs = append(errs, err)
	}
	if r.own {
		if err := r.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("etcd: close client: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Kill stops r as a crashed process would stop: heartbeats and watchers end
// and its own client is closed, but no lease is revoked, so r's instances
// stay listed until their TTL runs out. Later calls on r return
// [registry.ErrClosed]. It exists to test what the rest of a system does
// when an instance dies.
func (r *Registry) Kill() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	leases := r.leases
	r.leases = nil
	close(r.done)
	r.mu.Unlock()
	for _, l := range leases {
		l.stop()
	}
	r.wg.Wait()
	if r.own {
		_ = r.cli.Close()
	}
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
		return fmt.Errorf("etcd: close: %w", ctx.Err())
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

func sorted(insts map[string]registry.Instance) []registry.Instance {
	out := make([]registry.Instance, 0, len(insts))
	for _, inst := range insts {
		out = append(out, clone(inst))
	}
	slices.SortFunc(out, func(a, b registry.Instance) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func clone(inst registry.Instance) registry.Instance {
	inst.Metadata = maps.Clone(inst.Metadata)
	return inst
}

func equal(a, b registry.Instance) bool {
	return a.Service == b.Service && a.ID == b.ID && a.Addr == b.Addr && maps.Equal(a.Metadata, b.Metadata)
}
