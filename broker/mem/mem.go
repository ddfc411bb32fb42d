package mem

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald/broker"
)

// Broker is an in-process [broker.Broker]: a client of a bus held in memory.
// [New] makes a bus and its first client; [Broker.Connect] makes more
// clients of the same bus. It is safe for concurrent use.
type Broker struct {
	bus *bus
	log *slog.Logger

	closed atomic.Bool
	mu     sync.Mutex // guards subs and the closing of closed
	subs   map[*subscription]struct{}
}

var (
	_ broker.Broker         = (*Broker)(nil)
	_ broker.BatchPublisher = (*Broker)(nil)
)

// New returns a client of a new, empty in-process bus. Options: [WithLogger].
func New(opts ...Option) *Broker {
	c := config{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&c)
	}
	return newClient(newBus(), c.log)
}

func newClient(b *bus, log *slog.Logger) *Broker {
	return &Broker{bus: b, log: log, subs: map[*subscription]struct{}{}}
}

// Connect returns a new client of b's bus, as a second connection to the
// same server would be: it sees the same topics and queue groups, and has its
// own subscriptions and its own Close. It works even after b is closed.
func (b *Broker) Connect() *Broker { return newClient(b.bus, b.log) }

// Publish stores a copy of m and queues it for every queue group and
// broadcast subscriber of topic; it never blocks on consumers. It sets m.ID
// when empty and does not keep m. A topic with nothing subscribed drops the
// message.
func (b *Broker) Publish(ctx context.Context, topic string, m *broker.Message, opts ...broker.PublishOption) error {
	if _, err := broker.NewPublishOptions(topic, m, opts...); err != nil {
		return fmt.Errorf("mem: publish %q: %w", topic, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: publish %q: %w", topic, err)
	}
	if b.closed.Load() {
		return fmt.Errorf("mem: publish %q: %w", topic, broker.ErrClosed)
	}
	if m.ID == "" {
		m.ID = broker.NewID()
	}
	b.bus.publish(topic, stored(m.Clone(), topic))
	return nil
}

// PublishBatch publishes ms to topic in order, as Publish would each, with
// one lock of each group for the whole batch. It implements
// [broker.BatchPublisher]: either every message is queued or, when an
// argument is invalid, none is.
func (b *Broker) PublishBatch(ctx context.Context, topic string, ms []*broker.Message, opts ...broker.PublishOption) error {
	for _, m := range ms {
		if _, err := broker.NewPublishOptions(topic, m, opts...); err != nil {
			return fmt.Errorf("mem: publish %q: %w", topic, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: publish %q: %w", topic, err)
	}
	if b.closed.Load() {
		return fmt.Errorf("mem: publish %q: %w", topic, broker.ErrClosed)
	}
	cs := make([]*broker.Message, len(ms))
	for i, m := range ms {
		if m.ID == "" {
			m.ID = broker.NewID()
		}
		cs[i] = stored(m.Clone(), topic)
	}
	b.bus.publishAll(topic, cs)
	return nil
}

// stored readies c, a copy nobody else holds, to be kept by the bus.
func stored(c *broker.Message, topic string) *broker.Message {
	c.Topic = topic
	c.Attempt = 0
	c.PublishedAt = time.Now().Round(0) // wall clock only, like a timestamp off the wire
	return c
}

// Subscribe starts delivering the messages of topic to h. With
// [broker.Queue] it joins that queue group, creating it on first use; the
// group then buffers the topic's messages for as long as the bus lives.
// Without it, the subscription gets the messages published from now until it
// ends. Messages published after Subscribe returns are delivered to it.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	o, err := broker.NewSubscribeOptions(topic, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("mem: subscribe %q: %w", topic, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mem: subscribe %q: %w", topic, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return nil, fmt.Errorf("mem: subscribe %q: %w", topic, broker.ErrClosed)
	}
	s := newSubscription(b, b.bus.join(topic, o.Queue), h, o)
	b.subs[s] = struct{}{}
	s.start()
	return s, nil
}

// forget removes s from the subscriptions Close stops.
func (b *Broker) forget(s *subscription) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// Close stops every subscription of this client and waits, bounded by ctx,
// for their handlers in flight; Publish and Subscribe then return
// [broker.ErrClosed]. The bus, and the queue groups' buffered messages, stay
// for the other clients. When ctx ends first, the deliveries still in flight
// go back to their queue groups and the error wraps ctx.Err(). Calls after
// the first return nil.
func (b *Broker) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return nil
	}
	b.closed.Store(true)
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.subs = nil
	b.mu.Unlock()

	for _, s := range subs {
		s.stop()
	}
	undrained := 0
	for _, s := range subs {
		if s.wait(ctx) != nil {
			undrained++
		}
	}
	if undrained > 0 {
		b.log.Warn("mem: close ended before every handler finished", "subscriptions", undrained, "err", ctx.Err())
		return fmt.Errorf("mem: close: %d subscriptions not drained: %w", undrained, ctx.Err())
	}
	return nil
}
