package nats

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/nats-io/nats.go/jetstream"
)

// credit counts a subscription's free handler slots: the pull loop takes
// them to size its pulls, the workers give them back as handlers finish.
type credit struct {
	mu   sync.Mutex
	free int
	want int           // the pull loop waits until free >= want (0: not waiting)
	wake chan struct{} // capacity 1: free reached want
}

func newCredit(n int) *credit { return &credit{free: n, wake: make(chan struct{}, 1)} }

// take returns every free slot when there are at least min of them, and
// otherwise 0, asking for a wake-up once there are.
func (c *credit) take(min int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.free >= min {
		n := c.free
		c.free, c.want = 0, 0
		return n
	}
	c.want = min
	return 0
}

// give returns n slots.
func (c *credit) give(n int) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	c.free += n
	wake := c.want > 0 && c.free >= c.want
	if wake {
		c.want = 0
	}
	c.mu.Unlock()
	if wake {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// pull is the subscription's pull loop. Free handler slots are its credit:
// a pull asks for as many messages as it took slots, so every message it
// receives has a handler ready and none waits in the client while its
// AckWait runs. The loop waits for a batch of free slots (half the
// Concurrency, at least one), pulls for them and every other free slot, and
// goes on waiting for the next batch while that pull is served, so that
// pulls overlap and handlers do not wait for a round trip. A failed pull is
// retried with backoff and a lost consumer recreated; when the connection
// comes back from a disconnection the pulls in flight are abandoned (the
// server may have lost them) and new ones sent.
func (s *subscription) pull() {
	defer close(s.done)
	defer s.b.nc.RemoveStatusListener(s.status)
	var fetches sync.WaitGroup
	defer fetches.Wait()
	// gen is the context of the pulls sent since the last reconnection.
	var gen struct {
		ctx    context.Context
		cancel context.CancelFunc
	}
	gen.ctx, gen.cancel = context.WithCancel(s.life)
	defer func() { gen.cancel() }()
	reconnected := func() {
		gen.cancel()
		gen.ctx, gen.cancel = context.WithCancel(s.life)
	}
	status := s.status
	batch := max(1, s.opts.Concurrency/2)
	for {
		select {
		case err := <-s.failed:
			if !s.pullFailed(err) {
				return
			}
			continue
		case _, ok := <-status:
			if !ok {
				status = nil
			} else {
				reconnected()
			}
			continue
		default:
		}
		n := s.credit.take(batch)
		if n == 0 {
			select {
			case <-s.credit.wake:
			case <-s.stopping:
				return
			case err := <-s.failed:
				if !s.pullFailed(err) {
					return
				}
			case _, ok := <-status:
				if !ok {
					status = nil
				} else {
					reconnected()
				}
			}
			continue
		}
		select {
		case <-s.stopping:
			s.credit.give(n)
			return
		default:
		}
		cons, ctx := s.cons, gen.ctx
		fetches.Go(func() {
			dispatched, err := s.fetch(ctx, cons, n)
			s.credit.give(n - dispatched)
			if err == nil {
				s.fails.Store(0)
				return
			}
			s.fails.Add(1)
			select {
			case s.failed <- err:
			default: // the loop has one to handle already
			}
		})
	}
}

// pullFailed handles a failed pull: it restores the consumer if it may be
// lost, and waits the backoff. It reports false when the subscription
// stopped meanwhile.
func (s *subscription) pullFailed(err error) bool {
	log := s.opts.Logger
	log.Debug("nats: pull failed", "topic", s.opts.Topic, "queue", s.opts.Queue, "err", err)
	if lostConsumer(err) {
		if err := s.restore(); errors.Is(err, context.Canceled) {
			log.Debug("nats: consumer check interrupted by a reconnection", "topic", s.opts.Topic, "queue", s.opts.Queue)
		} else if err != nil {
			log.Warn("nats: cannot restore the consumer; retrying", "topic", s.opts.Topic, "queue", s.opts.Queue, "err", err)
		}
	}
	backoff := broker.Backoff{Initial: 50 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2}
	t := time.NewTimer(backoff.Delay(int(s.fails.Load())))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stopping:
		return false
	}
}

// fetch pulls up to n messages from cons and queues them for the workers;
// it returns how many it queued. The pull ends when n arrived, when it
// expires, or when ctx ends (a reconnection, or the subscription stopping).
// Messages received once the subscription is stopping go back to JetStream
// at once.
func (s *subscription) fetch(ctx context.Context, cons jetstream.Consumer, n int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, pullExpiry)
	defer cancel()
	batch, err := cons.Fetch(n, jetstream.FetchContext(ctx))
	if err != nil {
		return 0, err
	}
	queued := 0
	for m := range batch.Messages() {
		if s.stopped.Load() {
			s.giveBack(m)
			continue
		}
		s.jobs <- m // never blocks: the queue holds Concurrency, this pull took n free slots
		queued++
	}
	err = batch.Error()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = nil // expired, reconnected or stopping: not a failure
	}
	return queued, err
}

// giveBack returns a message that was pulled but will not be handled to
// JetStream, for another member or a later delivery.
func (s *subscription) giveBack(m jetstream.Msg) {
	if err := m.Nak(); err != nil {
		s.opts.Logger.Debug("nats: nak on unsubscribe", "topic", s.opts.Topic, "err", err)
	}
}
