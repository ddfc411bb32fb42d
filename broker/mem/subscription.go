package mem

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/herald-dev/herald/broker"
)

// subscription is one Subscribe call: Concurrency workers popping from its
// group.
type subscription struct {
	b    *Broker
	g    *group
	h    broker.Handler
	opts *broker.SubscribeOptions

	// ctx is the handlers' context. It is cancelled once the workers have
	// stopped, or when a drain runs out of time.
	ctx    context.Context
	cancel context.CancelFunc

	workers  []*worker
	stopping bool // guarded by g.mu: workers pop nothing more
	stopOnce sync.Once
	done     chan struct{} // closed when every worker has returned
}

// worker runs one handler at a time. Its fields other than msg are guarded
// by the group's mutex.
type worker struct {
	s         *subscription
	msg       broker.Message // the delivery handed to the handler, reused
	cur       entry          // the delivery in flight
	busy      bool           // cur is in flight
	abandoned bool           // cur was given back to the group: drop the handler's outcome
}

var _ broker.Subscription = (*subscription)(nil)

func newSubscription(b *Broker, g *group, h broker.Handler, o *broker.SubscribeOptions) *subscription {
	s := &subscription{b: b, g: g, h: h, opts: o, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.workers = make([]*worker, o.Concurrency)
	for i := range s.workers {
		s.workers[i] = &worker{s: s}
	}
	return s
}

// start runs the workers.
func (s *subscription) start() {
	var wg sync.WaitGroup
	for _, w := range s.workers {
		wg.Go(w.run)
	}
	go func() {
		wg.Wait()
		s.cancel()
		close(s.done)
	}()
}

// Topic returns the topic subscribed to.
func (s *subscription) Topic() string { return s.opts.Topic }

// Queue returns the queue group joined, or "" for a broadcast subscriber.
func (s *subscription) Queue() string { return s.opts.Queue }

// Unsubscribe stops delivery to this subscription and waits, bounded by ctx,
// for its handlers in flight. A queue group keeps its messages for later
// members. When ctx ends first, the deliveries still in flight go back to the
// group (the handlers' outcome is then ignored) and the error wraps
// ctx.Err(). Calls after the first return nil.
func (s *subscription) Unsubscribe(ctx context.Context) error {
	if !s.stop() {
		return nil
	}
	s.b.forget(s)
	if err := s.wait(ctx); err != nil {
		return fmt.Errorf("mem: unsubscribe %q: %w", s.opts.Topic, err)
	}
	return nil
}

// stop makes the workers pop nothing more; it reports whether this call did
// it. A broadcast subscriber's group leaves the topic at once.
func (s *subscription) stop() (first bool) {
	s.stopOnce.Do(func() {
		first = true
		g := s.g
		g.mu.Lock()
		s.stopping = true
		g.mu.Unlock()
		g.cond.Broadcast()
		if g.queue == "" {
			s.b.bus.leave(g)
			g.kill()
		}
	})
	return first
}

// wait waits for the workers to return. When ctx ends first, it abandons the
// deliveries in flight, cancels the handlers' context and returns ctx.Err().
func (s *subscription) wait(ctx context.Context) error {
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
	}
	g := s.g
	abandoned := 0
	g.mu.Lock()
	for _, w := range s.workers {
		if w.busy && !w.abandoned {
			w.abandoned = true
			abandoned++
			g.retryLocked(entry{m: w.cur.m, attempt: w.cur.attempt + 1}, 0)
		}
	}
	g.mu.Unlock()
	s.cancel()
	if abandoned > 0 {
		s.opts.Logger.Warn("mem: handlers still running when the drain ended; their deliveries go back to the group",
			"topic", s.opts.Topic, "queue", s.opts.Queue, "abandoned", abandoned)
	}
	return ctx.Err()
}

// idleSpins is how many times an idle worker yields before it parks.
const idleSpins = 20

// run pops deliveries and handles them until the subscription stops.
func (w *worker) run() {
	s, g := w.s, w.s.g
	g.mu.Lock()
	for {
		for spins := 0; g.ready.len() == 0 && !s.stopping; spins++ {
			if spins < idleSpins {
				// The next message is often a few hundred nanoseconds
				// away: yield a little before parking, which would make
				// the publisher pay for a thread wake-up.
				g.mu.Unlock()
				runtime.Gosched()
				g.mu.Lock()
				continue
			}
			g.waiting++
			g.cond.Wait()
			g.waiting--
		}
		if s.stopping {
			g.mu.Unlock()
			w.msg = broker.Message{}
			return
		}
		w.cur, w.busy = g.ready.pop(), true
		g.mu.Unlock()

		w.msg = *w.cur.m
		w.msg.Attempt = w.cur.attempt
		d := broker.Process(s.ctx, s.h, &w.msg, s.opts)
		if d.Action == broker.DeadLetter {
			s.deadLetter(&w.msg, d.Err)
		}

		g.mu.Lock()
		if w.abandoned {
			g.mu.Unlock()
			w.msg = broker.Message{}
			return
		}
		w.busy = false
		if d.Action == broker.Retry {
			s.opts.Logger.Debug("mem: handler failed; redelivering",
				"topic", s.opts.Topic, "msg_id", w.msg.ID, "attempt", w.msg.Attempt, "delay", d.Delay, "err", d.Err)
			g.retryLocked(entry{m: w.cur.m, attempt: w.cur.attempt + 1}, d.Delay)
		}
		w.cur = entry{}
	}
}

// deadLetter publishes the dead letter of m. Publishing on the bus cannot
// fail, so the original is then acknowledged (dropped).
func (s *subscription) deadLetter(m *broker.Message, reason error) {
	dl := broker.NewDeadLetter(m, s.opts, reason)
	s.opts.Logger.Warn("mem: message dead-lettered",
		"topic", s.opts.Topic, "queue", s.opts.Queue, "msg_id", m.ID, "attempt", m.Attempt,
		"dead_letter_topic", s.opts.DeadLetterTopic, "err", reason)
	s.b.bus.publish(s.opts.DeadLetterTopic, stored(dl, s.opts.DeadLetterTopic))
}
