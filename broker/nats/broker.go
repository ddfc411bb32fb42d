package nats

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	_ broker.Broker         = (*Broker)(nil)
	_ broker.BatchPublisher = (*Broker)(nil)
)

// Broker is a [broker.Broker] on NATS JetStream. It is safe for concurrent
// use by multiple goroutines.
type Broker struct {
	cfg     config
	nc      *nats.Conn
	ownConn bool
	js      jetstream.JetStream

	streamMu sync.Mutex
	streams  sync.Map // topic → struct{}: streams known to exist

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
}

// New connects to the NATS server at url (a NATS URL or a comma-separated
// list of them, credentials included) and returns a broker on its JetStream.
// ctx bounds the connection and the check that JetStream is enabled.
//
// The connection reconnects forever, with a jittered backoff from 50 ms to
// 2 s, and subscriptions resume once it is back. With [WithConn] the broker
// uses the caller's connection instead and url is ignored.
//
// Options: [WithConn], [WithNATSOptions], [WithPrefix], [WithMemoryStorage],
// [WithMaxAge], [WithDuplicateWindow], [WithMaxPending],
// [WithPublishTimeout], [WithPrefetch], [WithReplicas], [WithLogger].
func New(ctx context.Context, url string, opts ...Option) (*Broker, error) {
	cfg := defaults()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	b := &Broker{cfg: cfg, nc: cfg.conn, subs: map[*subscription]struct{}{}}
	if b.nc == nil {
		nc, err := b.connect(ctx, url)
		if err != nil {
			return nil, err
		}
		b.nc, b.ownConn = nc, true
	}
	js, err := jetstream.New(b.nc,
		jetstream.WithPublishAsyncMaxPending(cfg.maxPending),
		jetstream.WithPublishAsyncTimeout(cfg.publishTimeout),
	)
	if err == nil {
		_, err = js.AccountInfo(ctx)
	}
	if err != nil {
		if b.ownConn {
			b.nc.Close()
		}
		return nil, fmt.Errorf("nats: JetStream: %w", err)
	}
	b.js = js
	return b, nil
}

// connect dials url with Herald's connection settings.
func (b *Broker) connect(ctx context.Context, url string) (*nats.Conn, error) {
	log := b.cfg.logger
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	opts := []nats.Option{
		nats.Name("herald"),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats: disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats: reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats: asynchronous error", "subject", subj, "err", err)
		}),
	}
	opts = append(opts, b.cfg.natsOpts...)
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(url, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("nats: connect: %w", r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("nats: connect: %w", ctx.Err())
	}
}

// reconnectDelay is the wait before reconnect attempt n: 50 ms doubling to
// 2 s, with ±20 % jitter.
func reconnectDelay(attempts int) time.Duration {
	d := 50 * time.Millisecond << min(attempts, 6)
	d = min(d, 2*time.Second)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Close stops every subscription (stop fetching, let in-flight handlers
// finish, bounded by ctx), flushes what the connection still has to send
// (acknowledgements), closes the connection unless it came from
// [WithConn], and stops the embedded server if the broker started one.
// Calls after the first return nil.
func (b *Broker) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()

	errs := []error{broker.UnsubscribeAll(ctx, subs)}
	if b.nc.IsConnected() {
		fctx, cancel := flushContext(ctx)
		if err := b.nc.FlushWithContext(fctx); err != nil {
			b.cfg.logger.Warn("nats: flush on close", "err", err)
		}
		cancel()
	}
	if b.ownConn {
		b.nc.Close()
	}
	if b.cfg.embedded != nil {
		b.cfg.embedded.Shutdown()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nats: close: %w", err)
	}
	return nil
}

// flushContext bounds a flush by ctx, or by a second if ctx is already done
// (the flush carries acknowledgements that save redeliveries).
func flushContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx.Err() == nil {
		if _, ok := ctx.Deadline(); ok {
			return ctx, func() {}
		}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), time.Second)
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Replicas returns how many replicas the broker gives the streams it
// creates ([WithReplicas]): what another JetStream asset that belongs with
// them (a key-value bucket of the same service) should have too.
func (b *Broker) Replicas() int { return b.cfg.replicas }

// As exposes the broker's NATS parts: target may be a **nats.Conn,
// a *jetstream.JetStream, or a **natsserver.Server (set only when the broker
// runs an embedded server).
func (b *Broker) As(target any) bool {
	switch t := target.(type) {
	case **nats.Conn:
		*t = b.nc
	case *jetstream.JetStream:
		*t = b.js
	case **natsserver.Server:
		if b.cfg.embedded == nil {
			return false
		}
		*t = b.cfg.embedded
	default:
		return false
	}
	return true
}
