package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-dev/herald/internal/jsreplicas"
	"github.com/herald-dev/herald/internal/natsurl"
	"github.com/herald-dev/herald/registry"
)

// Scheme is the URL scheme of the NATS registry.
const Scheme = "nats"

// Defaults.
const (
	// DefaultBucket is the KV bucket the registry uses unless told.
	DefaultBucket = "herald_registry"
	// DefaultMarkerTTL is how long the bucket keeps the markers of removed
	// and expired keys.
	DefaultMarkerTTL = time.Minute
	// DefaultReplicas is how many servers keep the bucket unless told:
	// one, all a single server can do (see [WithReplicas]).
	DefaultReplicas = 1
	// MaxReplicas is the most replicas JetStream allows a bucket.
	MaxReplicas = 5
)

var _ registry.Registry = (*Registry)(nil)

// Registry is a registry client on one NATS connection. It is safe for
// concurrent use.
type Registry struct {
	nc        *nats.Conn
	ownConn   bool
	js        jetstream.JetStream
	kv        jetstream.KeyValue
	bucket    string
	markerTTL time.Duration
	log       *slog.Logger

	mu     sync.Mutex
	leases map[string]*lease // by key
	closed bool
	done   chan struct{} // closed by Close: ends watchers
	wg     sync.WaitGroup
}

// lease is one registration and its heartbeat.
type lease struct {
	inst  registry.Instance
	value []byte
	ttl   time.Duration
	stop  chan struct{}
	done  chan struct{}
}

type options struct {
	bucket    string
	markerTTL time.Duration
	replicas  int
	log       *slog.Logger
}

// Option configures [New] and [Connect].
type Option func(*options) error

// WithBucket sets the KV bucket (default [DefaultBucket]).
func WithBucket(name string) Option {
	return func(o *options) error {
		if name == "" || strings.ContainsAny(name, ". *>") {
			return fmt.Errorf("%w: bucket name %q", registry.ErrInvalid, name)
		}
		o.bucket = name
		return nil
	}
}

// WithMarkerTTL sets how long the bucket keeps delete markers, when this
// client creates it (default [DefaultMarkerTTL], at least 1s).
func WithMarkerTTL(d time.Duration) Option {
	return func(o *options) error {
		if d < time.Second {
			return fmt.Errorf("%w: marker ttl %v is under 1s", registry.ErrInvalid, d)
		}
		o.markerTTL = d
		return nil
	}
}

// WithReplicas sets how many servers of a JetStream cluster keep a copy of
// the bucket ([DefaultReplicas] by default; 1..[MaxReplicas]). With 3 on a
// cluster of three, the registry survives the loss of any one server: a
// heartbeat that fails while JetStream elects the bucket's new leader is
// retried at the next one. More than 1 needs a cluster of at least that
// many servers: a single server refuses to create such a bucket.
//
// A bucket that exists with fewer replicas is scaled up to n (if the
// cluster refuses, it is used as it is, with a warning); one with more
// keeps them (a client started without the option must not scale a
// replicated bucket down), and the registry logs it.
func WithReplicas(n int) Option {
	return func(o *options) error {
		if n < 1 || n > MaxReplicas {
			return fmt.Errorf("%w: replicas must be in 1..%d, not %d", registry.ErrInvalid, MaxReplicas, n)
		}
		o.replicas = n
		return nil
	}
}

// WithLogger sets the logger (discard by default).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", registry.ErrInvalid)
		}
		o.log = l
		return nil
	}
}

// New returns a registry on nc, creating the bucket when it does not exist.
// The registry does not close nc.
func New(ctx context.Context, nc *nats.Conn, opts ...Option) (*Registry, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil NATS connection", registry.ErrInvalid)
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("nats registry: %w", err)
	}
	kv, err := bucket(ctx, js, o)
	if err != nil {
		return nil, err
	}
	return &Registry{
		nc: nc, js: js, kv: kv, bucket: o.bucket, markerTTL: o.markerTTL, log: o.log,
		leases: map[string]*lease{},
		done:   make(chan struct{}),
	}, nil
}

func newOptions(opts []Option) (options, error) {
	o := options{bucket: DefaultBucket, markerTTL: DefaultMarkerTTL, replicas: DefaultReplicas, log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// bucket binds to the bucket when it exists with per-message TTLs enabled,
// raising its replicas to o's if it has fewer, or creates it.
func bucket(ctx context.Context, js jetstream.JetStream, o options) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, o.bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         o.bucket,
			Description:    "Herald service registry: one key per instance, leased by per-key TTL",
			History:        1,
			LimitMarkerTTL: o.markerTTL,
			Replicas:       o.replicas,
		})
		if err == nil {
			return kv, nil
		}
		if !errors.Is(err, jetstream.ErrBucketExists) {
			return nil, fmt.Errorf("nats registry: create bucket %q: %w", o.bucket, err)
		}
		kv, err = js.KeyValue(ctx, o.bucket) // created by another client in between
	}
	if err != nil {
		return nil, fmt.Errorf("nats registry: bucket %q: %w", o.bucket, err)
	}
	// Made by someone else, maybe with other settings: use it if leases work.
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("nats registry: bucket %q: %w", o.bucket, err)
	}
	s, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return kv, nil
	}
	if s.LimitMarkerTTL() == 0 {
		return nil, fmt.Errorf("%w: bucket %q exists without LimitMarkerTTL, so keys cannot expire; delete it or choose another bucket", registry.ErrInvalid, o.bucket)
	}
	jsreplicas.ScaleUp(ctx, js, s.StreamInfo().Config, o.replicas, o.log.With("bucket", o.bucket), "registry", "bucket")
	return kv, nil
}

// Connect connects to the NATS server at serverURL, or to one of the
// servers of a comma-separated list of URLs (reconnecting forever when the
// connection drops), and returns a registry that closes the connection on
// Close.
func Connect(ctx context.Context, serverURL string, opts ...Option) (*Registry, error) {
	if _, err := newOptions(opts); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil { // dial nothing for a context already done
		return nil, fmt.Errorf("nats registry: connect to %s: %w", redact(serverURL), err)
	}
	nc, err := nats.Connect(serverURL,
		nats.Name("herald-registry"),
		nats.MaxReconnects(-1),
		nats.Timeout(timeout(ctx, 5*time.Second)),
	)
	if err != nil {
		return nil, fmt.Errorf("nats registry: connect to %s: %w", redact(serverURL), err)
	}
	r, err := New(ctx, nc, opts...)
	if err != nil {
		nc.Close()
		return nil, err
	}
	r.ownConn = true
	return r, nil
}

// OpenURL opens "nats://host:port" or, for a cluster,
// "nats://a:4222,b:4222,c:4222" (the URL's user and password go to each
// server), with the optional query parameters "bucket" ([WithBucket]) and
// "replicas" ([WithReplicas]).
func OpenURL(ctx context.Context, u *url.URL) (*Registry, error) {
	if u.Scheme != Scheme || u.Host == "" {
		return nil, fmt.Errorf("%w: NATS registry URL %q: want nats://host:port", registry.ErrInvalid, u.Redacted())
	}
	var opts []Option
	for k, v := range u.Query() {
		if len(v) != 1 {
			return nil, fmt.Errorf("%w: NATS registry URL: %q given %d times", registry.ErrInvalid, k, len(v))
		}
		switch k {
		case "bucket":
			opts = append(opts, WithBucket(v[0]))
		case "replicas":
			n, err := strconv.Atoi(v[0])
			if err != nil {
				return nil, fmt.Errorf("%w: NATS registry URL: replicas=%q is not a number such as 3", registry.ErrInvalid, v[0])
			}
			opts = append(opts, WithReplicas(n))
		default:
			return nil, fmt.Errorf("%w: NATS registry URL: unknown query parameter %q (known: bucket, replicas)", registry.ErrInvalid, k)
		}
	}
	servers, err := natsurl.Servers(u)
	if err != nil {
		return nil, fmt.Errorf("%w: NATS registry URL: %v", registry.ErrInvalid, err)
	}
	return Connect(ctx, servers, opts...)
}

// Conn returns the NATS connection the registry uses.
func (r *Registry) Conn() *nats.Conn { return r.nc }

// Register writes inst with its TTL and rewrites it every third of the TTL
// until Deregister or Close. The TTL is rounded up to whole seconds.
func (r *Registry) Register(ctx context.Context, inst registry.Instance, opts ...registry.RegisterOption) error {
	o, err := registry.NewRegisterOptions(inst, opts...)
	if err != nil {
		return fmt.Errorf("nats registry: register: %w", err)
	}
	inst.Metadata = maps.Clone(inst.Metadata)
	value, err := json.Marshal(inst)
	if err != nil {
		return fmt.Errorf("nats registry: register %s/%s: %w", inst.Service, inst.ID, err)
	}
	ttl := o.TTL.Truncate(time.Second)
	if ttl < o.TTL {
		ttl += time.Second
	}
	k := key(inst.Service, inst.ID)
	l := &lease{inst: inst, value: value, ttl: ttl, stop: make(chan struct{}), done: make(chan struct{})}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("nats registry: register %s/%s: %w", inst.Service, inst.ID, registry.ErrClosed)
	}
	old := r.leases[k]
	if old != nil {
		old.end() // no old heartbeat may land after the new value
	}
	if err := r.put(ctx, k, l); err != nil {
		if old != nil { // keep the registration that was there
			old = old.restart()
			r.start(k, old)
		}
		return fmt.Errorf("nats registry: register %s/%s: %w", inst.Service, inst.ID, err)
	}
	r.start(k, l)
	r.log.Debug("registry: registered", "service", inst.Service, "instance", inst.ID, "addr", inst.Addr, "ttl", ttl)
	return nil
}

// put writes the lease's value with its TTL.
func (r *Registry) put(ctx context.Context, k string, l *lease) error {
	msg := &nats.Msg{Subject: "$KV." + r.bucket + "." + k, Data: l.value}
	_, err := r.js.PublishMsg(ctx, msg, jetstream.WithMsgTTL(l.ttl), jetstream.WithExpectStream("KV_"+r.bucket))
	return err
}

// start runs l's heartbeat and records it. r.mu must be held.
func (r *Registry) start(k string, l *lease) {
	r.leases[k] = l
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.heartbeat(k, l)
	}()
}

// heartbeat rewrites l every third of its TTL until it is ended or the
// connection is closed for good.
func (r *Registry) heartbeat(k string, l *lease) {
	defer close(l.done)
	every := l.ttl / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if r.nc.IsClosed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		err := r.put(ctx, k, l)
		cancel()
		if err != nil {
			r.log.Warn("registry: heartbeat failed; retrying", "service", l.inst.Service, "instance", l.inst.ID, "err", err)
		}
	}
}

// end stops the heartbeat and waits for it, so no write of it lands after.
func (l *lease) end() {
	close(l.stop)
	<-l.done
}

// restart returns a fresh lease for the same registration.
func (l *lease) restart() *lease {
	return &lease{inst: l.inst, value: l.value, ttl: l.ttl, stop: make(chan struct{}), done: make(chan struct{})}
}

// Deregister stops renewing inst and purges its key. An instance that is not
// listed is not an error. An instance registered by another client is
// purged too, but comes back at that client's next heartbeat.
func (r *Registry) Deregister(ctx context.Context, inst registry.Instance) error {
	if err := registry.ValidateInstance(inst); err != nil {
		return fmt.Errorf("nats registry: deregister: %w", err)
	}
	k := key(inst.Service, inst.ID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("nats registry: deregister %s/%s: %w", inst.Service, inst.ID, registry.ErrClosed)
	}
	if l := r.leases[k]; l != nil {
		l.end()
		delete(r.leases, k)
	}
	if err := r.kv.Purge(ctx, k, jetstream.PurgeTTL(r.markerTTL)); err != nil {
		return fmt.Errorf("nats registry: deregister %s/%s: %w", inst.Service, inst.ID, err)
	}
	r.log.Debug("registry: deregistered", "service", inst.Service, "instance", inst.ID)
	return nil
}

// Lookup returns the live instances of service, sorted by ID.
func (r *Registry) Lookup(ctx context.Context, service string) ([]registry.Instance, error) {
	if err := registry.ValidateName(service); err != nil {
		return nil, fmt.Errorf("nats registry: lookup: %w", err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("nats registry: lookup %q: %w", service, err)
	}
	filter := escape(service) + ".*"
	barrier := r.barrier(ctx, service, filter)
	w, err := r.kv.Watch(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("nats registry: lookup %q: %w", service, err)
	}
	defer stop(w)
	live := map[string]registry.Instance{} // by key
	var (
		seen     uint64           // the newest revision the watch delivered
		caughtUp bool             // it delivered every value its replica had
		recheck  <-chan time.Time // armed while waiting for the barrier
	)
	for !caughtUp || seen < barrier {
		if caughtUp && recheck == nil {
			recheck = time.After(barrierRecheck)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("nats registry: lookup %q: %w", service, ctx.Err())
		case <-recheck:
			recheck = nil
			// Lower only: the entry is gone (or the leader silent); later writes are not waited for.
			barrier = min(barrier, r.barrier(ctx, service, filter))
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("nats registry: lookup %q: %w", service, nats.ErrConnectionClosed)
			}
			if e == nil {
				caughtUp = true
				continue
			}
			seen = max(seen, e.Revision())
			delete(live, e.Key()) // a delete or purge marker, or replaced below
			if e.Operation() == jetstream.KeyValuePut {
				if inst, ok := r.decode(service, e); ok {
					live[e.Key()] = inst
				}
			}
		}
	}
	if len(live) == 0 {
		return nil, fmt.Errorf("nats registry: lookup %q: %w", service, registry.ErrNotFound)
	}
	insts := slices.Collect(maps.Values(live))
	slices.SortFunc(insts, func(a, b registry.Instance) int { return strings.Compare(a.ID, b.ID) })
	return insts, nil
}

// Watch reports the changes to service's instances, starting with the live
// ones, until ctx is done, r is closed or its connection closed for good.
func (r *Registry) Watch(ctx context.Context, service string) (<-chan registry.Event, error) {
	if err := registry.ValidateName(service); err != nil {
		return nil, fmt.Errorf("nats registry: watch: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("nats registry: watch %q: %w", service, registry.ErrClosed)
	}
	w, err := r.kv.Watch(ctx, escape(service)+".*")
	if err != nil {
		return nil, fmt.Errorf("nats registry: watch %q: %w", service, err)
	}
	out := make(chan registry.Event)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(out)
		defer stop(w)
		r.watch(ctx, service, w, out)
	}()
	return out, nil
}

func (r *Registry) watch(ctx context.Context, service string, w jetstream.KeyWatcher, out chan<- registry.Event) {
	known := map[string]registry.Instance{}
	for {
		var ev registry.Event
		select {
		case <-ctx.Done():
			return
		case <-r.done:
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil { // the initial values are all in
				continue
			}
			_, id, _ := unkey(e.Key())
			switch e.Operation() {
			case jetstream.KeyValuePut:
				inst, ok := r.decode(service, e)
				if !ok {
					continue
				}
				if prev, seen := known[id]; seen && sameInstance(prev, inst) {
					continue // a heartbeat
				}
				known[id] = inst
				ev = registry.Event{Type: registry.Added, Instance: inst}
			default: // delete, purge, or the server's TTL marker
				prev, seen := known[id]
				if !seen {
					continue
				}
				delete(known, id)
				ev = registry.Event{Type: registry.Removed, Instance: prev}
			}
		}
		ev.Instance.Metadata = maps.Clone(ev.Instance.Metadata)
		select {
		case out <- ev:
		case <-ctx.Done():
			return
		case <-r.done:
			return
		}
	}
}

// decode returns the instance stored in e, when it is one of service's.
func (r *Registry) decode(service string, e jetstream.KeyValueEntry) (registry.Instance, bool) {
	var inst registry.Instance
	svc, id, ok := unkey(e.Key())
	if !ok || svc != service {
		return inst, false
	}
	if err := json.Unmarshal(e.Value(), &inst); err != nil || inst.Service != svc || inst.ID != id {
		r.log.Warn("registry: ignoring a malformed entry", "bucket", r.bucket, "key", e.Key(), "err", err)
		return registry.Instance{}, false
	}
	return inst, true
}

// Close purges what r registered, ends its watchers and heartbeats (bounded
// by ctx) and closes the connection if r opened it. Calls after the first
// return nil.
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
	for k, l := range leases {
		l.end()
		if r.nc.IsClosed() {
			continue // nothing to purge with; the TTL removes it
		}
		if err := r.kv.Purge(ctx, k, jetstream.PurgeTTL(r.markerTTL)); err != nil {
			errs = append(errs, fmt.Errorf("deregister %s/%s: %w", l.inst.Service, l.inst.ID, err))
		}
	}
	waited := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	if r.ownConn {
		r.nc.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nats registry: close: %w", err)
	}
	return nil
}

func (r *Registry) check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return registry.ErrClosed
	}
	return nil
}

// stop ends a KV watch and drains it in the background: the library's
// callback blocks on a full channel, and would otherwise hold its
// subscription (and the closing of the channel) forever.
func stop(w jetstream.KeyWatcher) {
	_ = w.Stop()
	go func() {
		for range w.Updates() { //nolint:revive // draining until the library closes it
		}
	}()
}

// key is the KV key of an instance: both names with '.' written as '=', so
// that the key has exactly two tokens.
func key(service, id string) string { return escape(service) + "." + escape(id) }

func escape(name string) string { return strings.ReplaceAll(name, ".", "=") }

// unkey is the inverse of key.
func unkey(k string) (service, id string, ok bool) {
	svc, id, ok := strings.Cut(k, ".")
	if !ok || strings.Contains(id, ".") {
		return "", "", false
	}
	return strings.ReplaceAll(svc, "=", "."), strings.ReplaceAll(id, "=", "."), true
}

func sameInstance(a, b registry.Instance) bool {
	return a.Service == b.Service && a.ID == b.ID && a.Addr == b.Addr && maps.Equal(a.Metadata, b.Metadata)
}

// timeout is what is left of ctx's deadline, or d.
func timeout(ctx context.Context, d time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left > 0 && left < d {
			return left
		}
	}
	return d
}

// redact hides the password of a server URL (or list of URLs).
func redact(servers string) string {
	parts := strings.Split(servers, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		} else {
			parts[i] = "(unparsable URL)"
		}
	}
	return strings.Join(parts, ",")
}
