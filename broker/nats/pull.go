package nats

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// credit counts a subscription's free places (handlers and prefetch): the
// pull loop takes them to size its pulls, the workers give them back as
// handlers finish.
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

// pull is the subscription's pull loop. Free places are its credit, one per
// handler plus the prefetch (see [WithPrefetch]): a pull asks for as many
// messages as it took places, so the client never holds more than that.
// Once half the places are free (at least one), it pulls for all the free
// ones and queues the messages for the workers as they arrive. One pull is
// out at a time: the server spreads messages across the pulls it holds, so
// two at once would deliver out of order; the prefetch keeps the workers
// busy meanwhile. A failed pull is retried with backoff and a lost
// consumer recreated; when the connection comes back from a disconnection
// the pull out is abandoned (the server may have lost it) and a new one sent.
func (s *subscription) pull() {
	defer close(s.done)
	defer s.b.nc.RemoveStatusListener(s.status)
	status := s.status
	reconnected := func(ok bool) {
		if !ok {
			status = nil // the listener was removed: the broker is closing
		}
	}
	batch := max(1, cap(s.jobs)/2)
	for {
		select {
		case err := <-s.failed:
			if !s.pullFailed(err) {
				return
			}
			continue
		case _, ok := <-status: // nothing is out: nothing to abandon
			reconnected(ok)
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
				reconnected(ok)
			}
			continue
		}
		select {
		case <-s.stopping:
			s.credit.give(n)
			return
		default:
		}
		queued, err := s.fetch(n, &status)
		s.credit.give(n - queued)
		if err == nil {
			s.fails.Store(0)
			continue
		}
		s.fails.Add(1)
		if !s.pullFailed(err) {
			return
		}
	}
}

// fetch sends one pull for n messages and queues them for the workers as
// they arrive; it returns how many it queued. The pull ends when n arrived,
// when it expires, when the connection comes back from a disconnection, or
// when the subscription stops; messages received once it is stopping go
// back to JetStream at once.
func (s *subscription) fetch(n int, status *chan nats.Status) (int, error) {
	ctx, cancel := context.WithTimeout(s.life, pullExpiry)
	defer cancel()
	batch, err := s.cons.Fetch(n, jetstream.FetchContext(ctx))
	if err != nil {
		return 0, err
	}
	queued := 0
	msgs := batch.Messages()
	for msgs != nil {
		select {
		case m, ok := <-msgs:
			if !ok {
				msgs = nil
				break
			}
			if s.stopped.Load() {
				s.giveBack(m)
				continue
			}
			s.queued.add(m)
			s.jobs <- m // never blocks: jobs holds every place, this pull took n free ones
			queued++
		case _, ok := <-*status:
			if !ok {
				*status = nil
				break
			}
			cancel() // the messages already received still come out of msgs
		}
	}
	err = batch.Error()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = nil // expired, reconnected or stopping: not a failure
	}
	return queued, err
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

// giveBack returns a message that was pulled but will not be handled to
// JetStream, for another member or a later delivery.
func (s *subscription) giveBack(m jetstream.Msg) {
	if err := m.Nak(); err != nil {
		s.opts.Logger.Debug("nats: nak on unsubscribe", "topic", s.opts.Topic, "err", err)
	}
}

// queue remembers since when each pulled message has been waiting for a
// worker, so that the heartbeats cover it (see [WithPrefetch]).
type queue struct {
	mu sync.Mutex
	at map[jetstream.Msg]time.Time
}

func (q *queue) add(m jetstream.Msg) {
	q.mu.Lock()
	q.at[m] = time.Now()
	q.mu.Unlock()
}

func (q *queue) remove(m jetstream.Msg) {
	q.mu.Lock()
	delete(q.at, m)
	q.mu.Unlock()
}

// waiting appends to ms the messages that have waited at least d.
func (q *queue) waiting(ms []jetstream.Msg, d time.Duration) []jetstream.Msg {
	q.mu.Lock()
	defer q.mu.Unlock()
	for m, t := range q.at {
		if time.Since(t) >= d {
			ms = append(ms, m)
		}
	}
	return ms
}
