package gomicro

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	herald "github.com/herald-dev/herald/broker"
	mb "go-micro.dev/v5/broker"
)

// subscriber is a go-micro Subscriber over one Herald subscription.
type subscriber struct {
	b     *Broker
	topic string
	opts  mb.SubscribeOptions
	h     mb.Handler

	ready chan struct{} // closed once deliveries may start (see WithStartDelay)

	once sync.Once
	sub  herald.Subscription // set before the subscriber is handed out
	err  error               // of the one Unsubscribe
}

var _ mb.Subscriber = (*subscriber)(nil)

// Options returns the go-micro options the subscription was made with.
func (s *subscriber) Options() mb.SubscribeOptions { return s.opts }

// Topic returns the topic subscribed to.
func (s *subscriber) Topic() string { return s.topic }

// Unsubscribe stops delivery to this subscriber and waits for its handlers
// in flight, bounded by [WithDrainTimeout]. A queue group keeps its
// messages for its other and later members. Calls after the first return
// the first one's result.
func (s *subscriber) Unsubscribe() error {
	s.b.forget(s)
	return s.stop()
}

// stop unsubscribes from Herald once.
func (s *subscriber) stop() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.b.cfg.drainTimeout)
		defer cancel()
		if err := s.sub.Unsubscribe(ctx); err != nil {
			s.err = fmt.Errorf("gomicro: unsubscribe %q: %w", s.topic, err)
		}
	})
	return s.err
}

// handle is the Herald handler of the subscription: it runs the go-micro
// handler on an event of the delivery, then decides, from what the handler
// returned and whether it called Ack, what Herald does with the message:
// nil acknowledges it, an error has it redelivered (or dead-lettered).
func (s *subscriber) handle(ctx context.Context, m *herald.Message) error {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return ctx.Err() // shutting down before the start: redelivered
	}
	ev := newEvent(m)
	herr := s.call(ev)
	notAcked := false
	if herr == nil && !s.opts.AutoAck && !s.awaitAck(ctx, ev) {
		herr = fmt.Errorf("%w (go-micro DisableAutoAck: the handler returned without calling Event.Ack)", ErrNotAcked)
		notAcked = true
	}
	result, acked := ev.settle(herr)
	if acked && herr != nil && !notAcked {
		s.b.cfg.logger.Warn("gomicro: handler acknowledged the message, then failed; it stays acknowledged",
			"topic", s.topic, "msg_id", m.ID, "attempt", m.Attempt, "err", herr)
	}
	if result != nil {
		if eh := s.b.Options().ErrorHandler; eh != nil {
			_ = eh(ev)
		}
	}
	return result
}

// call runs the go-micro handler, turning a panic into an error wrapping
// herald.ErrPanic (which Herald treats as any handler error).
func (s *subscriber) call(ev *event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v\n%s", herald.ErrPanic, r, debug.Stack())
		}
	}()
	return s.h(ev)
}

// awaitAck reports whether Ack was called, waiting for it up to
// [WithAckGrace] after the handler returned.
func (s *subscriber) awaitAck(ctx context.Context, ev *event) bool {
	if g := s.b.cfg.ackGrace; g > 0 {
		t := time.NewTimer(g)
		defer t.Stop()
		select {
		case <-ev.ackedCh:
			return true
		case <-t.C:
		case <-ctx.Done():
		}
	}
	select {
	case <-ev.ackedCh:
		return true
	default:
		return false
	}
}
