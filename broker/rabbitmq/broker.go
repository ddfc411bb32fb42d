package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald/broker"
	amqp "github.com/rabbitmq/amqp091-go"
)

var (
	_ broker.Broker         = (*Broker)(nil)
	_ broker.BatchPublisher = (*Broker)(nil)
)

// Broker is a [broker.Broker] on RabbitMQ. It is safe for concurrent use by
// multiple goroutines.
//
// It keeps two connections, one to publish and one to consume (so that flow
// control on publishers never holds back acknowledgements), and opens them
// again, with a backoff, whenever they are lost.
type Broker struct {
	cfg  config
	pub  *connector
	sub  *connector
	pubs []*pubChannel
	next atomic.Uint64 // round robin over pubs

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
}

// New connects to the RabbitMQ server at url ("amqp://user:password@host:5672/vhost",
// or "amqps://…" for TLS) and declares the broker's topic exchange. ctx
// bounds the connections and the declaration.
//
// Options: [WithExchange], [WithQueueType], [WithQueueExpiry],
// [WithPrefetch], [WithPublishChannels], [WithMaxPending],
// [WithPublishTimeout], [WithMaxMessageSize], [WithHeartbeat], [WithTLS],
// [WithLogger].
func New(ctx context.Context, url string, opts ...Option) (*Broker, error) {
	cfg := defaults()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if _, err := amqp.ParseURI(url); err != nil {
		return nil, fmt.Errorf("rabbitmq: %w: %v", broker.ErrBadURL, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("rabbitmq: connect: %w", err)
	}
	b := &Broker{cfg: cfg, subs: map[*subscription]struct{}{}}
	acfg := amqp.Config{Heartbeat: cfg.heartbeat, TLSClientConfig: cfg.tls, Locale: "en_US"}
	var err error
	if b.pub, err = dial(ctx, url, "publish", acfg, b.declareExchange, cfg.logger); err != nil {
		return nil, fmt.Errorf("rabbitmq: connect: %w", err)
	}
	if b.sub, err = dial(ctx, url, "consume", acfg, b.declareExchange, cfg.logger); err != nil {
		b.pub.close()
		return nil, fmt.Errorf("rabbitmq: connect: %w", err)
	}
	b.pubs = make([]*pubChannel, cfg.pubChannels)
	for i := range b.pubs {
		b.pubs[i] = &pubChannel{b: b}
	}
	return b, nil
}

// declareExchange declares the broker's durable topic exchange on conn.
func (b *Broker) declareExchange(conn *amqp.Connection) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare(b.cfg.exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %q: %w", b.cfg.exchange, err)
	}
	return nil
}

// pubChannel is one of the broker's publishing channels, in confirm mode,
// opened again on the current connection when it was closed.
type pubChannel struct {
	b  *Broker
	mu sync.Mutex
	ch *amqp.Channel
}

// get returns the open channel, opening one when needed.
func (p *pubChannel) get(ctx context.Context) (*amqp.Channel, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch != nil && !p.ch.IsClosed() {
		return p.ch, nil
	}
	conn, err := p.b.pub.get(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, err
	}
	p.ch = ch
	return ch, nil
}

// Publish sends m to topic through the broker's exchange and returns nil once
// the server has confirmed it (publisher confirms: the message is in every
// queue bound to the topic, on disk for durable queues). A topic that no
// queue is bound to drops the message, and the server confirms it all the
// same: declare a queue group ([Broker.DeclareGroup]) or subscribe it once
// before publishing what it must not miss. It
// retries while the server is unreachable, until ctx is done (or
// [WithPublishTimeout] when ctx has no deadline); a retry after a lost
// confirm may deliver a message twice, with its ID. The error wraps
// [broker.ErrTooLarge] for a message over [WithMaxMessageSize] and
// [broker.ErrClosed] after Close.
func (b *Broker) Publish(ctx context.Context, topic string, m *broker.Message, opts ...broker.PublishOption) error {
	if _, err := broker.NewPublishOptions(topic, m, opts...); err != nil {
		return fmt.Errorf("rabbitmq: publish %q: %w", topic, err)
	}
	if b.isClosed() {
		return fmt.Errorf("rabbitmq: publish %q: %w", topic, broker.ErrClosed)
	}
	if m.ID == "" {
		m.ID = broker.NewID()
	}
	if err := b.checkSize(m); err != nil {
		return fmt.Errorf("rabbitmq: publish %q: %w", topic, err)
	}
	p := publishing(m, time.Now())
	if err := b.publish(ctx, b.cfg.exchange, topic, []amqp.Publishing{p}); err != nil {
		return fmt.Errorf("rabbitmq: publish %q: %w", topic, err)
	}
	return nil
}

// PublishBatch publishes ms to topic in order on one channel, without
// waiting for each confirm before the next publish (at most
// [WithMaxPending] awaiting theirs), and returns nil once the server has
// confirmed every one. Messages that were not confirmed (connection lost,
// negative confirm) are published again, with their IDs. It implements
// [broker.BatchPublisher].
func (b *Broker) PublishBatch(ctx context.Context, topic string, ms []*broker.Message, opts ...broker.PublishOption) error {
	for _, m := range ms {
		if _, err := broker.NewPublishOptions(topic, m, opts...); err != nil {
			return fmt.Errorf("rabbitmq: publish %q: %w", topic, err)
		}
	}
	if b.isClosed() {
		return fmt.Errorf("rabbitmq: publish %q: %w", topic, broker.ErrClosed)
	}
	ps := make([]amqp.Publishing, len(ms))
	now := time.Now()
	for i, m := range ms {
		if m.ID == "" {
			m.ID = broker.NewID()
		}
		if err := b.checkSize(m); err != nil {
			return fmt.Errorf("rabbitmq: publish %q: message %d: %w", topic, i, err)
		}
		ps[i] = publishing(m, now)
	}
	if err := b.publish(ctx, b.cfg.exchange, topic, ps); err != nil {
		return fmt.Errorf("rabbitmq: publish %q: %w", topic, err)
	}
	return nil
}

func (b *Broker) checkSize(m *broker.Message) error {
	n := len(m.Body) + len(m.ID)
	for k, v := range m.Header {
		n += len(k) + len(v) + 8
	}
	if n > b.cfg.maxSize {
		return fmt.Errorf("%w: %d bytes, the limit is %d", broker.ErrTooLarge, n, b.cfg.maxSize)
	}
	return nil
}

// publish publishes ps to exchange with routing key key on one of the
// broker's channels and waits for their confirms, publishing again those
// not confirmed, until all are or ctx is done. It does not check Close:
// dead letters and redeliveries go out while Close drains handlers.
func (b *Broker) publish(ctx context.Context, exchange, key string, ps []amqp.Publishing) error {
	ctx, cancel := b.publishContext(ctx)
	defer cancel()
	backoff := broker.Backoff{Initial: 20 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.2}
	pending := ps
	var last error
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return errors.Join(err, last)
		}
		p := b.pubs[b.next.Add(1)%uint64(len(b.pubs))]
		failed, err := p.publish(ctx, exchange, key, pending, b.cfg.maxPending)
		if err == nil {
			return nil
		}
		pending = failed
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		if errors.Is(err, errClosing) {
			return fmt.Errorf("%w: %w", broker.ErrClosed, err)
		}
		if !transient(err) && !errors.Is(err, errNack) {
			return err
		}
		last = err
		t := time.NewTimer(backoff.Delay(n))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errors.Join(ctx.Err(), last)
		}
	}
}

// errNack is a negative publisher confirm: the server did not take the
// message (an internal error, or a queue refusing it); it is published again.
var errNack = errors.New("the server refused the message (negative confirm)")

// publish publishes ps on p's channel, keeping at most window awaiting their
// confirm, and returns those that were not confirmed with the first error.
func (p *pubChannel) publish(ctx context.Context, exchange, key string, ps []amqp.Publishing, window int) ([]amqp.Publishing, error) {
	ch, err := p.get(ctx)
	if err != nil {
		return ps, err
	}
	type inflight struct {
		i  int
		dc *amqp.DeferredConfirmation
	}
	var (
		queue  = make([]inflight, 0, min(len(ps), window))
		failed []amqp.Publishing
		first  error
	)
	fail := func(i int, err error) {
		failed = append(failed, ps[i])
		if first == nil {
			first = err
		}
	}
	wait := func(f inflight) error {
		ok, err := f.dc.WaitContext(ctx)
		if err != nil {
			return err
		}
		if !ok {
			if ch.IsClosed() {
				fail(f.i, amqp.ErrClosed)
			} else {
				fail(f.i, errNack)
			}
		}
		return nil
	}
	for i := range ps {
		if len(queue) == window {
			if err := wait(queue[0]); err != nil {
				return ps, err // ctx done: report all as unconfirmed
			}
			queue = queue[1:]
		}
		if first != nil && ch.IsClosed() {
			fail(i, first)
			continue
		}
		dc, err := ch.PublishWithDeferredConfirm(exchange, key, false, false, ps[i])
		if err != nil {
			fail(i, err)
			continue
		}
		queue = append(queue, inflight{i, dc})
	}
	for _, f := range queue {
		if err := wait(f); err != nil {
			return ps, err
		}
	}
	if first != nil {
		// Keep the batch's order: the failed ones go again in order, but
		// after those already confirmed.
		return failed, first
	}
	return nil, nil
}

// publishContext bounds ctx by [WithPublishTimeout] when it has no deadline.
func (b *Broker) publishContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, b.cfg.publishTimeout)
}

// Close stops every subscription (stop consuming, let in-flight handlers
// finish, bounded by ctx; see [broker.Subscription]) and closes the
// connections. Calls after the first return nil.
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
	b.sub.close()
	b.pub.close()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rabbitmq: close: %w", err)
	}
	return nil
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// As exposes the broker's publishing connection: target may be a
// **amqp.Connection (github.com/rabbitmq/amqp091-go). It is nil while the
// broker reconnects.
func (b *Broker) As(target any) bool {
	if t, ok := target.(**amqp.Connection); ok {
		*t = b.pub.current()
		return true
	}
	return false
}
