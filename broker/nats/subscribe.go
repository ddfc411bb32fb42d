package nats

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/nats-io/nats.go"
)

const (
	// maxDeliverMargin is how many deliveries above MaxAttempts JetStream
	// still makes before it gives up on a message by itself. Herald
	// dead-letters at MaxAttempts; the margin covers deliveries that never
	// reached a decision (a process that died mid-handler, a dead-letter
	// publish that failed), so a message that keeps crashing its consumer
	// stops coming back.
	maxDeliverMargin = 10
	// minMaxAckPending is the lowest MaxAckPending the broker gives a
	// consumer. What each subscriber holds is bounded by its pull batch (its
	// Concurrency); MaxAckPending only caps the group as a whole, and messages
	// waiting for a delayed redelivery count against it.
	minMaxAckPending = 1000
	// broadcastInactive is how long the server keeps a broadcast
	// subscriber's consumer once the subscriber is gone without
	// unsubscribing (a process that died, a long disconnection).
	broadcastInactive = time.Minute
)

// Subscribe delivers the messages of topic to h.
//
// With [broker.Queue] the subscriber joins the durable pull consumer named
// after the group on the topic's stream, created with DeliverAll: a group
// that did not exist before starts at the beginning of the stream, so the
// events published before its first member ever joined reach it (as far
// back as the stream's max age). Without it, the subscriber gets an
// ephemeral consumer of its own with DeliverNew.
//
// Up to [broker.Concurrency] handlers run at once, on that many
// goroutines, and the subscriber pulls for its free handlers plus a
// prefetch (see [WithPrefetch]). While a handler runs, or a prefetched
// message waits for one, the broker tells JetStream it is in progress every
// quarter of the AckWait, so only a subscriber that stopped answering has
// its messages redelivered. ctx bounds the set-up only.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	o, err := broker.NewSubscribeOptions(topic, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats: subscribe %q: %w", topic, err)
	}
	if b.isClosed() {
		return nil, fmt.Errorf("nats: subscribe %q: %w", topic, broker.ErrClosed)
	}
	s := newSubscription(b, h, o)
	if err := b.ensureStream(ctx, topic); err != nil {
		return nil, fmt.Errorf("nats: subscribe %q: stream %s: %w", topic, s.stream, classify(err))
	}
	if _, err := s.createConsumer(ctx, false); err != nil {
		return nil, fmt.Errorf("nats: subscribe %q: consumer %s: %w", topic, s.name, classify(err))
	}
	if err := s.openInbox(); err != nil {
		return nil, fmt.Errorf("nats: subscribe %q: pull inbox: %w", topic, classify(err))
	}
	s.status = b.nc.StatusChanged(nats.CONNECTED)
	workers := make([]*worker, o.Concurrency)
	for i := range workers {
		workers[i] = &worker{}
		s.workers.Add(1)
		go s.work(workers[i])
	}
	go s.heartbeats(workers)
	go s.settler()
	go func() {
		s.workers.Wait()
		close(s.settle)
		<-s.settled
		close(s.idle)
	}()
	go s.pull()
	b.mu.Lock()
	closed := b.closed
	if !closed {
		b.subs[s] = struct{}{}
	}
	b.mu.Unlock()
	if closed {
		_ = s.Unsubscribe(ctx)
		return nil, fmt.Errorf("nats: subscribe %q: %w", topic, broker.ErrClosed)
	}
	return s, nil
}

// subscription is a live [broker.Subscription]: a JetStream consumer, a
// loop pulling from it on an inbox of its own (see pull.go), and
// Concurrency workers running the handler.
type subscription struct {
	b       *Broker
	h       broker.Handler
	opts    *broker.SubscribeOptions
	stream  string
	subject string
	name    string // the consumer: the group, or a random name for a broadcast subscriber
	next    string // the subject of the consumer's pull requests

	credit   *credit        // free places: handlers plus prefetch
	jobs     chan *nats.Msg // pulled messages for the workers; capacity Concurrency + prefetch
	queued   queue          // the messages in jobs, for the heartbeats
	stopping chan struct{}  // closed by stop (Unsubscribe)
	stopped  atomic.Bool    // set by stop, before stopping is closed
	stopOnce sync.Once
	life     context.Context // the pull loop's context, cancelled with stopping
	stopLife context.CancelFunc
	ctx      context.Context    // the handlers' context
	cancel   context.CancelFunc // cancels ctx: Unsubscribe gave up waiting
	done     chan struct{}      // closed when the pull loop is done
	workers  sync.WaitGroup
	idle     chan struct{}    // closed when the workers are done and their acks sent
	settle   chan settlement  // the workers' acks, for the settler
	settled  chan struct{}    // closed when the settler is done
	status   chan nats.Status // the connection's reconnections
	fails    atomic.Int32     // pulls failed in a row

	// inbox is the subscription the pulls reply to: the pull loop's while
	// it runs, then Unsubscribe's. Whatever arrives on it, and on the
	// inboxes it replaced, comes on replies.
	inbox   *nats.Subscription
	replies chan *nats.Msg

	heartbeat atomic.Int64  // in-progress interval, from the consumer's AckWait
	lastSeq   atomic.Uint64 // last stream sequence delivered (broadcast resumes after it)

	unsubscribed atomic.Bool
}

func newSubscription(b *Broker, h broker.Handler, o *broker.SubscribeOptions) *subscription {
	prefetch := b.cfg.prefetch
	if prefetch < 0 {
		prefetch = max(DefaultPrefetch, o.Concurrency)
	}
	ctx, cancel := context.WithCancel(context.Background())
	life, stopLife := context.WithCancel(context.Background())
	places := o.Concurrency + prefetch
	s := &subscription{
		life:     life,
		stopLife: stopLife,
		b:        b,
		h:        h,
		opts:     o,
		stream:   streamName(b.cfg.prefix, o.Topic),
		subject:  subject(b.cfg.prefix, o.Topic),
		name:     o.Queue,
		credit:   newCredit(places),
		jobs:     make(chan *nats.Msg, places),
		queued:   queue{at: map[*nats.Msg]time.Time{}},
		stopping: make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		idle:     make(chan struct{}),
		settle:   make(chan settlement, o.Concurrency),
		settled:  make(chan struct{}),
		// One pull's batch (at most every place), what an abandoned pull
		// may still deliver (as much), and room for status replies: nats.go
		// drops what does not fit, which would then wait out its AckWait.
		replies: make(chan *nats.Msg, 2*places+64),
	}
	if s.name == "" {
		s.name = fmt.Sprintf("herald-broadcast-%016x", rand.Uint64())
	}
	s.next = apiNext + s.stream + "." + s.name
	s.setAckWait(o.AckWait)
	return s
}

// Topic returns the topic subscribed to.
func (s *subscription) Topic() string { return s.opts.Topic }

// Queue returns the queue group joined, or "" for a broadcast subscriber.
func (s *subscription) Queue() string { return s.opts.Queue }

// setAckWait sets the heartbeat interval to a quarter of d, the shortest of
// the subscription's AckWait and the consumer's: a handler that has been
// running for an interval is reported in progress at the next beat, at most
// half an AckWait after it started, and then every interval.
func (s *subscription) setAckWait(d time.Duration) {
	if cur := time.Duration(s.heartbeat.Load()) * 4; cur > 0 && cur < d {
		d = cur
	}
	s.heartbeat.Store(int64(max(d/4, 5*time.Millisecond)))
}

// Unsubscribe stops pulling and leaves the inbox the subscription's pulls
// reply to, then waits for the handlers in flight until ctx is done, and
// leaves the consumer: a queue group's consumer stays for the members that
// join later, a broadcast subscriber's consumer is deleted.
//
// The inbox is unsubscribed and the connection flushed before the wait for
// the handlers: once the server has answered the flush it hands this
// subscriber's pulls nothing more, so the group's next message goes to a
// member that is there (see pull.go for the proof, and for a cluster's
// narrower promise). Messages pulled but not started, and those still on
// their way when the server saw the inbox go, go back to JetStream at once
// (Nak), for the group's other members.
//
// When ctx ends first, the handlers' context is cancelled (their messages
// are redelivered) and the error wraps ctx's. Calls after the first return
// nil.
func (s *subscription) Unsubscribe(ctx context.Context) error {
	if !s.unsubscribed.CompareAndSwap(false, true) {
		return nil
	}
	defer func() {
		s.b.mu.Lock()
		delete(s.b.subs, s)
		s.b.mu.Unlock()
	}()
	s.stop()
	var err error
	select {
	case <-s.done: // prompt: every wait of the loop ends with stopping
	case <-ctx.Done():
	}
	select {
	case <-s.done:
		s.closeInbox(ctx)
	default:
		go func() {
			<-s.done
			s.closeInbox(context.Background())
		}()
		err = fmt.Errorf("nats: unsubscribe %q: pull loop still running: %w", s.opts.Topic, ctx.Err())
	}
	if err == nil {
		select {
		case <-s.idle:
		case <-ctx.Done():
			err = fmt.Errorf("nats: unsubscribe %q: handlers still running: %w", s.opts.Topic, ctx.Err())
		}
	}
	s.cancel()
	s.deleteEphemeral()
	return err
}

// stop stops the pull loop and, once it is done, closes the workers' queue.
// It is Unsubscribe's first step, and safe to call more than once.
func (s *subscription) stop() {
	s.stopOnce.Do(func() {
		s.stopped.Store(true)
		close(s.stopping)
		s.stopLife()
		go func() {
			<-s.done // no pull can queue a message any more
			close(s.jobs)
		}()
	})
}
