package httpbroker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/registry"
)

var (
	_ broker.Broker         = (*Broker)(nil)
	_ broker.BatchPublisher = (*Broker)(nil)
	_ broker.GroupDeclarer  = (*Broker)(nil)
)

// Broker is the peer-to-peer HTTP broker: a publisher spool and a
// subscriber endpoint, found through a [registry.Registry]. It is safe for
// concurrent use.
type Broker struct {
	reg    registry.Registry
	cfg    config
	sign   *signer
	log    *slog.Logger
	client *http.Client

	ctx    context.Context // ends at Close: route watches
	cancel context.CancelFunc
	wg     sync.WaitGroup

	ops         chan *op      // published messages for the committer; never closed
	spoolClosed chan struct{} // closed once the spool is closed for good

	engMu sync.Mutex
	eng   *engine

	mu     sync.Mutex
	closed bool
	routes map[string]*route
	groups map[string]map[string]bool // known queue groups by topic
	subs   map[string]*subscription

	srvMu   sync.Mutex
	srv     *http.Server
	ln      net.Listener
	baseURL string
	nonces  *nonceCache
	reading chan struct{} // bodies being read (see maxReading)

	stats counters
}

// New returns a broker that finds subscribers through reg and spools
// published messages in the directory of [WithSpool]; [WithSecret] is
// required too. The subscriber endpoint is opened at the first Subscribe.
// reg is not closed by [Broker.Close] unless [WithCloseRegistry] says so.
func New(reg registry.Registry, opts ...Option) (*Broker, error) {
	if reg == nil {
		return nil, invalid("nil registry")
	}
	c := defaults()
	for _, opt := range opts {
		if err := opt(&c); err != nil {
			return nil, err
		}
	}
	if c.spool == "" {
		return nil, invalid("no spool directory (WithSpool, or spool= in the URL)")
	}
	if len(c.keys) == 0 {
		return nil, invalid("no secret (WithSecret, or %s in the environment)", EnvSecret)
	}
	if c.ttl == 0 {
		c.ttl = registry.DefaultTTL
	}
	clientTLS := c.clientTLS
	if clientTLS == nil {
		clientTLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	b := &Broker{
		reg:  reg,
		cfg:  c,
		sign: &signer{keys: c.keys},
		log:  c.log,
		client: &http.Client{Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     60 * time.Second, // below the server's, so the client closes first
			TLSClientConfig:     clientTLS,
			TLSHandshakeTimeout: 5 * time.Second,
			DisableCompression:  true,
		}},
		ops:         make(chan *op, 1024),
		spoolClosed: make(chan struct{}),
		routes:      map[string]*route{},
		groups:      map[string]map[string]bool{},
		subs:        map[string]*subscription{},
		nonces:      newNonceCache(1 << 20),
		reading:     make(chan struct{}, maxReading),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	e, err := startEngine(b)
	if err != nil {
		b.cancel()
		return nil, fmt.Errorf("http: open: %w", err)
	}
	b.eng = e
	e.syncAll()
	return b, nil
}

// engine returns the running engine, or nil while it restarts or after
// Close.
func (b *Broker) engine() *engine {
	b.engMu.Lock()
	defer b.engMu.Unlock()
	return b.eng
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Publish spools m for every subscriber of topic known now (each queue
// group known to this publisher, each live broadcast subscriber) and returns
// once the spool has committed it to disk. Delivery happens in the
// background; see the package documentation.
func (b *Broker) Publish(ctx context.Context, topic string, m *broker.Message, opts ...broker.PublishOption) error {
	if _, err := broker.NewPublishOptions(topic, m, opts...); err != nil {
		return fmt.Errorf("http: publish %q: %w", topic, err)
	}
	return b.publish(ctx, topic, []*broker.Message{m}, false)
}

// PublishBatch spools ms to topic in order with one commit to disk, and
// returns once it is done. It implements [broker.BatchPublisher].
func (b *Broker) PublishBatch(ctx context.Context, topic string, ms []*broker.Message, opts ...broker.PublishOption) error {
	for _, m := range ms {
		if _, err := broker.NewPublishOptions(topic, m, opts...); err != nil {
			return fmt.Errorf("http: publish %q: %w", topic, err)
		}
	}
	if len(ms) == 0 {
		return nil
	}
	return b.publish(ctx, topic, ms, false)
}

// publish spools ms. hold keeps them for the topic's future queue groups
// when the topic has no subscriber at all (dead letters); internal
// publishes (dead letters) are allowed while Close drains the handlers.
func (b *Broker) publish(ctx context.Context, topic string, ms []*broker.Message, hold bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("http: publish %q: %w", topic, err)
	}
	if !hold && b.isClosed() {
		return fmt.Errorf("http: publish %q: %w", topic, broker.ErrClosed)
	}
	now := time.Now()
	stored := make([][]byte, len(ms))
	for i, m := range ms {
		id := m.ID
		if id == "" {
			id = broker.NewID()
		}
		if len(id) > maxIDLength {
			return fmt.Errorf("http: publish %q: %w: message id of %d bytes (limit %d)", topic, broker.ErrInvalidOption, len(id), maxIDLength)
		}
		stored[i] = appendStored(nil, id, now, m.Header, m.Body)
		if len(stored[i]) > b.cfg.maxMessage {
			return fmt.Errorf("http: publish %q: %w: %d bytes with headers (limit %d)", topic, broker.ErrTooLarge, len(stored[i]), b.cfg.maxMessage)
		}
		m.ID = id
	}
	if err := b.submit(ctx, &op{kind: opPublish, topic: topic, msgs: stored, hold: hold}); err != nil {
		return fmt.Errorf("http: publish %q: %w", topic, err)
	}
	return nil
}

// submit hands a publish to the committer and waits for its commit.
func (b *Broker) submit(ctx context.Context, o *op) error {
	o.done = make(chan error, 1)
	select {
	case b.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.spoolClosed:
		return broker.ErrClosed
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		return ctx.Err() // it may still be committed: at least once
	case <-b.spoolClosed:
		select {
		case err := <-o.done:
			return err
		default:
			return broker.ErrClosed
		}
	}
}

// route returns the view of topic's subscriptions, starting its watch the
// first time.
func (b *Broker) route(topic string) *route {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.routes[topic]
	if r == nil {
		r = newRoute(b, topic)
		b.routes[topic] = r
		if b.ctx.Err() == nil {
			b.wg.Go(func() { r.watch(b.ctx) })
		}
	}
	return r
}

func (b *Broker) routeIfAny(topic string) *route {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.routes[topic]
}

// routeChanged is called when a topic's view changed: groups seen are
// remembered, and the engine's lanes follow the endpoints.
func (b *Broker) routeChanged(r *route) {
	eps, _ := r.snapshot()
	for _, ep := range eps {
		if ep.queue != "" {
			b.learnGroup(r.topic, ep.queue)
		}
	}
	if e := b.engine(); e != nil {
		e.syncTopic(r.topic)
	}
}

// targetsOf returns the target keys a message published to topic now goes
// to: every known queue group, every live broadcast subscription.
func (b *Broker) targetsOf(topic string) []string {
	r := b.route(topic)
	eps, _ := r.snapshot()
	var keys []string
	b.mu.Lock()
	for g := range b.groups[topic] {
		keys = append(keys, groupKey(topic, g))
	}
	b.mu.Unlock()
	for id, ep := range eps {
		switch {
		case ep.queue == "":
			keys = append(keys, broadcastKey(topic, id))
		case !b.knowsGroup(topic, ep.queue):
			keys = append(keys, groupKey(topic, ep.queue)) // learnt just now; persisted with the message
		}
	}
	return keys
}

// Close unsubscribes every subscription (letting handlers in flight finish,
// bounded by ctx), keeps delivering spooled messages to reachable
// subscribers for up to [WithCloseFlush] (bounded by ctx), then closes the
// spool, the endpoint and, with [WithCloseRegistry], the registry. What was
// not delivered stays in the spool. Calls after the first return nil.
func (b *Broker) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := make([]*subscription, 0, len(b.subs))
	for _, s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()

	var (
		errMu sync.Mutex
		errs  []error
		wg    sync.WaitGroup
	)
	for _, s := range subs {
		wg.Go(func() {
			if err := s.Unsubscribe(ctx); err != nil {
				errMu.Lock()
				errs = append(errs, err)
				errMu.Unlock()
			}
		})
	}
	wg.Wait()

	if b.cfg.closeFlush > 0 {
		fctx, cancel := context.WithTimeout(ctx, b.cfg.closeFlush)
		if e := b.engine(); e != nil {
			e.flush(fctx)
		}
		cancel()
	}
	b.mu.Lock()
	b.cancel() // route watches; under mu, so route starts no watch after it
	b.mu.Unlock()
	b.engMu.Lock()
	e := b.eng
	b.eng = nil
	b.engMu.Unlock()
	if e != nil {
		if err := e.stop(false); err != nil {
			errs = append(errs, err)
		}
	}
	close(b.spoolClosed)

	b.srvMu.Lock()
	if b.srv != nil {
		_ = b.srv.Close()
	}
	b.srvMu.Unlock()
	b.client.CloseIdleConnections()

	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	if b.cfg.closeRegistry {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := b.reg.Close(rctx); err != nil {
			errs = append(errs, fmt.Errorf("close registry: %w", err))
		}
		cancel()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("http: close: %w", err)
	}
	return nil
}

// Registry returns the registry the broker uses.
func (b *Broker) Registry() registry.Registry { return b.reg }

// As exposes the broker's registry: target of type *registry.Registry.
func (b *Broker) As(target any) bool {
	if p, ok := target.(*registry.Registry); ok {
		*p = b.reg
		return true
	}
	return false
}
