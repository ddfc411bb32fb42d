package watermill

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	wm "github.com/ThreeDotsLabs/watermill/message"

	"github.com/herald-dev/herald/broker"
)

// SubscriberConfig configures a [Subscriber]. The zero value works.
type SubscriberConfig struct {
	// Group is the Herald queue group every Subscribe call joins:
	// Watermill's consumer group. [DefaultGroup] when empty.
	Group string
	// MaxAttempts is how many deliveries a message gets before Herald
	// dead-letters it ([DefaultMaxAttempts] when 0).
	MaxAttempts int
	// Backoff spaces the redeliveries of nacked messages ([DefaultBackoff]
	// when zero).
	Backoff broker.Backoff
	// AckWait is how long a delivery may wait for Ack or Nack before the
	// backend hands it to another subscriber; backends that can extend it
	// while the handler runs do (0: Herald's default).
	AckWait time.Duration
	// CloseTimeout bounds the end of each subscription, on Close or when
	// its context is cancelled ([DefaultCloseTimeout] when 0).
	CloseTimeout time.Duration
	// Options are extra Herald subscribe options, applied last.
	Options []broker.SubscribeOption
}

// Subscriber is a Watermill message.Subscriber over a Herald broker. It is
// safe for concurrent use.
type Subscriber struct {
	b    broker.Broker
	cfg  SubscriberConfig
	opts []broker.SubscribeOption

	mu      sync.Mutex
	closed  bool
	closing chan struct{} // closed by Close
	subs    sync.WaitGroup
}

var (
	_ wm.Subscriber           = (*Subscriber)(nil)
	_ wm.SubscribeInitializer = (*Subscriber)(nil)
)

// NewSubscriber returns a Subscriber that consumes through b. Closing the
// Subscriber ends its subscriptions but does not close b: the caller owns
// it. The configuration is checked here, so that a bad one fails before the
// first Subscribe.
func NewSubscriber(b broker.Broker, cfg SubscriberConfig) (*Subscriber, error) {
	if b == nil {
		return nil, errors.New("watermill: subscriber: nil broker")
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff == (broker.Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.CloseTimeout < 0 {
		return nil, fmt.Errorf("watermill: subscriber: negative close timeout %v", cfg.CloseTimeout)
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	opts := []broker.SubscribeOption{
		broker.Queue(cfg.Group),
		broker.Concurrency(1), // one message at a time per channel: Watermill's contract
		broker.MaxAttempts(cfg.MaxAttempts),
		broker.RetryBackoff(cfg.Backoff),
	}
	if cfg.AckWait != 0 {
		opts = append(opts, broker.AckWait(cfg.AckWait))
	}
	opts = append(opts, cfg.Options...)
	// Validate the options once, on a topic that is always valid.
	if _, err := broker.NewSubscribeOptions("watermill.check", func(context.Context, *broker.Message) error { return nil }, opts...); err != nil {
		return nil, fmt.Errorf("watermill: subscriber: %w", err)
	}
	return &Subscriber{b: b, cfg: cfg, opts: opts, closing: make(chan struct{})}, nil
}

// SubscribeInitialize declares the subscriber's queue group on topic
// ([broker.DeclareGroup]), so that the messages published to topic from now
// on are kept for it even before its first Subscribe. A backend without the
// capability makes it fail with errors.ErrUnsupported.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CloseTimeout)
	defer cancel()
	if err := broker.DeclareGroup(ctx, s.b, topic, s.cfg.Group); err != nil {
		return fmt.Errorf("watermill: initialize %q: %w", topic, err)
	}
	return nil
}

// Subscribe joins the subscriber's queue group on topic and returns the
// channel of its messages, one at a time: the next comes once the previous
// one is acknowledged or nacked. The channel is closed once ctx is
// cancelled or the Subscriber closed, after the message in hand, if any,
// was settled (a message not acknowledged by then is delivered again).
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *wm.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.subs.Add(1)
	s.mu.Unlock()

	out := make(chan *wm.Message)
	stop := make(chan struct{}) // closed when the subscription ends
	var (
		mu       sync.Mutex
		stopped  bool
		inflight sync.WaitGroup // handlers that may still send on out
	)
	h := func(hctx context.Context, m *broker.Message) error {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return errStopped
		}
		inflight.Add(1)
		mu.Unlock()
		defer inflight.Done()
		msg := fromHerald(m)
		// The message's context has the values of Subscribe's and ends
		// with its settlement or the subscription.
		mctx, cancel := context.WithCancel(ctx)
		defer cancel()
		msg.SetContext(mctx)
		select {
		case out <- msg:
		case <-stop:
			return errStopped
		case <-hctx.Done():
			return hctx.Err()
		}
		select {
		case <-msg.Acked():
			return nil
		case <-msg.Nacked():
			return errNacked
		case <-stop:
			return errStopped
		case <-hctx.Done():
			return hctx.Err()
		}
	}
	sub, err := s.b.Subscribe(ctx, topic, h, s.opts...)
	if err != nil {
		s.subs.Done()
		return nil, fmt.Errorf("watermill: subscribe %q: %w", topic, err)
	}
	go func() {
		defer s.subs.Done()
		select {
		case <-ctx.Done():
		case <-s.closing:
		}
		mu.Lock()
		stopped = true
		mu.Unlock()
		close(stop) // handlers in flight return at once
		uctx, cancel := context.WithTimeout(context.Background(), s.cfg.CloseTimeout)
		defer cancel()
		_ = sub.Unsubscribe(uctx)
		// Even if the backend's Unsubscribe ran out of time, no handler
		// sends on out any more once these returned, and none starts.
		inflight.Wait()
		close(out)
	}()
	return out, nil
}

// Close ends every subscription, closing their channels once their
// handlers returned (bounded by [SubscriberConfig.CloseTimeout] each). It
// does not close the broker. Calls after the first return nil.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.subs.Wait()
	return nil
}
