package nats

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	// pullExpiry is the life of one pull request, and pullHeartbeat the
	// interval of the server's idle heartbeats while it waits: a pull that
	// misses two fails, and the consumer is checked.
	pullExpiry    = 10 * time.Second
	pullHeartbeat = 2 * time.Second
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
// goroutines, and the subscriber pulls as many messages as it has handlers
// free, so a message never waits in the client for a handler. While a
// handler runs, the broker tells JetStream it is in progress every third of
// the AckWait, so only a subscriber that stopped answering has its messages
// redelivered. ctx bounds the set-up only.
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
	cons, err := s.createConsumer(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("nats: subscribe %q: consumer %s: %w", topic, s.name, classify(err))
	}
	s.cons = cons
	s.status = b.nc.StatusChanged(nats.CONNECTED)
	for range o.Concurrency {
		s.workers.Add(1)
		go s.work()
	}
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
// loop pulling from it, and Concurrency workers running the handler.
type subscription struct {
	b       *Broker
	h       broker.Handler
	opts    *broker.SubscribeOptions
	stream  string
	subject string
	name    string // the consumer: the group, or a random name for a broadcast subscriber

	slots    chan struct{}      // one per handler running or about to: a pull asks for the free ones
	jobs     chan jetstream.Msg // unbuffered: pulled messages go to the workers
	stopping chan struct{}      // closed by Unsubscribe
	life     context.Context    // the pull loop's context, cancelled with stopping
	stopLife context.CancelFunc
	ctx      context.Context    // the handlers' context
	cancel   context.CancelFunc // cancels ctx: Unsubscribe gave up waiting
	workers  sync.WaitGroup
	done     chan struct{}    // closed when the pull loop returns
	status   chan nats.Status // the connection's reconnections

	heartbeat atomic.Int64  // in-progress interval, from the consumer's AckWait
	lastSeq   atomic.Uint64 // last stream sequence delivered (broadcast resumes after it)

	cons jetstream.Consumer // owned by the pull loop once it runs

	unsubscribed atomic.Bool
}

func newSubscription(b *Broker, h broker.Handler, o *broker.SubscribeOptions) *subscription {
	ctx, cancel := context.WithCancel(context.Background())
	life, stopLife := context.WithCancel(context.Background())
	s := &subscription{
		life:     life,
		stopLife: stopLife,
		b:        b,
		h:        h,
		opts:     o,
		stream:   streamName(b.cfg.prefix, o.Topic),
		subject:  subject(b.cfg.prefix, o.Topic),
		name:     o.Queue,
		slots:    make(chan struct{}, o.Concurrency),
		jobs:     make(chan jetstream.Msg),
		stopping: make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
	}
	if s.name == "" {
		s.name = fmt.Sprintf("herald-broadcast-%016x", rand.Uint64())
	}
	s.setAckWait(o.AckWait)
	return s
}

// Topic returns the topic subscribed to.
func (s *subscription) Topic() string { return s.opts.Topic }

// Queue returns the queue group joined, or "" for a broadcast subscriber.
func (s *subscription) Queue() string { return s.opts.Queue }

// setAckWait sets the in-progress interval to a third of d, the shortest of
// the subscription's AckWait and the consumer's.
func (s *subscription) setAckWait(d time.Duration) {
	if cur := time.Duration(s.heartbeat.Load()) * 3; cur > 0 && cur < d {
		d = cur
	}
	s.heartbeat.Store(int64(max(d/3, 10*time.Millisecond)))
}

// consumerConfig is the consumer of a new subscription; resume makes a
// broadcast subscriber whose consumer was lost start after the last message
// it got.
func (s *subscription) consumerConfig(resume bool) jetstream.ConsumerConfig {
	o := s.opts
	c := jetstream.ConsumerConfig{
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    o.MaxAttempts + maxDeliverMargin,
		MaxAckPending: max(minMaxAckPending, 2*o.Concurrency),
		FilterSubject: s.subject,
	}
	if o.Queue != "" {
		c.Durable = o.Queue
		c.DeliverPolicy = jetstream.DeliverAllPolicy
		c.Description = "Herald queue group " + o.Queue + " on " + o.Topic
		return c
	}
	c.Name = s.name
	c.Description = "Herald broadcast subscriber on " + o.Topic
	c.InactiveThreshold = broadcastInactive
	c.DeliverPolicy = jetstream.DeliverNewPolicy
	if seq := s.lastSeq.Load(); resume && seq > 0 {
		c.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		c.OptStartSeq = seq + 1
	}
	return c
}

// createConsumer creates the subscription's consumer, or, for a queue group
// whose consumer exists, updates its AckWait and MaxDeliver to this
// member's and raises its MaxAckPending if this member needs more. Members
// of one group should use the same options: the last to join sets them.
func (s *subscription) createConsumer(ctx context.Context, resume bool) (jetstream.Consumer, error) {
	js := s.b.js
	want := s.consumerConfig(resume)
	if want.Durable == "" {
		cons, err := js.CreateConsumer(ctx, s.stream, want)
		if err != nil {
			return nil, err
		}
		if !resume {
			// DeliverNew starts after the stream's last message at creation:
			// a lost consumer is recreated from there, not from "new" again.
			s.lastSeq.Store(cons.CachedInfo().Delivered.Stream)
		}
		return cons, nil
	}
	cons, err := js.Consumer(ctx, s.stream, want.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = js.CreateConsumer(ctx, s.stream, want)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			cons, err = js.Consumer(ctx, s.stream, want.Durable) // another member created it
		}
	}
	if err != nil {
		return nil, err
	}
	have := cons.CachedInfo().Config
	if have.AckWait != want.AckWait || have.MaxDeliver != want.MaxDeliver || have.MaxAckPending < want.MaxAckPending {
		have.AckWait, have.MaxDeliver = want.AckWait, want.MaxDeliver
		have.MaxAckPending = max(have.MaxAckPending, want.MaxAckPending)
		if cons, err = js.UpdateConsumer(ctx, s.stream, have); err != nil {
			return nil, err
		}
	}
	s.setAckWait(cons.CachedInfo().Config.AckWait)
	return cons, nil
}

// pull is the subscription's pull loop: it reserves the free handler
// slots, fetches that many messages (at least one, at most Concurrency) and
// hands them to the workers, until the subscription stops. A pull is never
// larger than the free slots, so no message waits in the client for a
// handler while its AckWait runs. A failed pull is retried with backoff, and
// a lost consumer recreated.
func (s *subscription) pull() {
	defer close(s.done)
	defer s.b.nc.RemoveStatusListener(s.status)
	backoff := broker.Backoff{Initial: 50 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2}
	for fails := 0; ; {
		select {
		case s.slots <- struct{}{}:
		case <-s.stopping:
			return
		}
		n := 1
	reserve:
		for n < s.opts.Concurrency {
			select {
			case s.slots <- struct{}{}:
				n++
			default:
				break reserve
			}
		}
		dispatched, err := s.fetch(n)
		for range n - dispatched {
			<-s.slots
		}
		if err == nil {
			fails = 0
			continue
		}
		select {
		case <-s.stopping:
			return
		default:
		}
		fails++
		s.opts.Logger.Debug("nats: pull failed", "topic", s.opts.Topic, "queue", s.opts.Queue, "err", err)
		if lostConsumer(err) {
			if err := s.restore(); errors.Is(err, context.Canceled) {
				s.opts.Logger.Debug("nats: consumer check interrupted by a reconnection", "topic", s.opts.Topic, "queue", s.opts.Queue)
			} else if err != nil {
				s.opts.Logger.Warn("nats: cannot restore the consumer; retrying", "topic", s.opts.Topic, "queue", s.opts.Queue, "err", err)
			}
		}
		t := time.NewTimer(backoff.Delay(fails))
		select {
		case <-t.C:
		case <-s.stopping:
			t.Stop()
			return
		}
	}
}

// fetch pulls up to n messages and hands them to the workers; it returns
// how many it handed over. The pull ends when n arrived, when it expires,
// when the connection comes back from a disconnection (the server may have
// lost the request), or when the subscription stops; messages that arrive
// once it is stopping go back to JetStream at once.
func (s *subscription) fetch(n int) (int, error) {
	for drained := false; !drained; {
		select {
		case _, ok := <-s.status: // reconnections before this pull do not concern it
			drained = !ok
		default:
			drained = true
		}
	}
	ctx, cancel := context.WithTimeout(s.life, pullExpiry)
	defer cancel()
	batch, err := s.cons.Fetch(n, jetstream.FetchContext(ctx), jetstream.FetchHeartbeat(pullHeartbeat))
	if err != nil {
		return 0, err
	}
	dispatched := 0
	msgs, status := batch.Messages(), s.status
	for msgs != nil {
		select {
		case m, ok := <-msgs:
			if !ok {
				msgs = nil
				break
			}
			select {
			case s.jobs <- m:
				dispatched++
			case <-s.stopping:
				if err := m.Nak(); err != nil {
					s.opts.Logger.Debug("nats: nak on unsubscribe", "topic", s.opts.Topic, "err", err)
				}
			}
		case <-status:
			cancel() // the messages already received still come out of msgs
			status = nil
		}
	}
	err = batch.Error()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = nil // expired, reconnected or stopping: not a failure
	}
	return dispatched, err
}

// lostConsumer reports whether a pull failed in a way that means the
// consumer may be gone: the server restarted without it, or it was deleted.
func lostConsumer(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrNoHeartbeat) ||
		errors.Is(err, jetstream.ErrBadRequest) ||
		errors.Is(err, nats.ErrNoResponders)
}

// restore checks that the consumer exists and recreates it (and its stream)
// when it does not.
func (s *subscription) restore() error {
	// Short: a request sent to a server that is going away gets no answer,
	// and the next pull or check goes to the one that comes back.
	ctx, cancel := context.WithTimeout(s.life, 2*time.Second)
	defer cancel()
	go func() {
		select {
		case <-s.status: // reconnected: ask the server that is back
			cancel()
		case <-ctx.Done():
		}
	}()
	cons, err := s.b.js.Consumer(ctx, s.stream, s.name)
	if err == nil {
		s.cons = cons
		return nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	s.b.forgetStream(s.opts.Topic)
	if err := s.b.ensureStream(ctx, s.opts.Topic); err != nil {
		return err
	}
	s.opts.Logger.Warn("nats: consumer lost; recreating it", "topic", s.opts.Topic, "queue", s.opts.Queue, "consumer", s.name)
	if cons, err = s.createConsumer(ctx, true); err != nil {
		return err
	}
	s.cons = cons
	return nil
}

// work runs the handler on the messages handed to it until the
// subscription stops.
func (s *subscription) work() {
	defer s.workers.Done()
	hb := newHeartbeat()
	defer hb.stop()
	for {
		select {
		case <-s.stopping:
			return
		case m := <-s.jobs:
			s.handle(m, hb)
			<-s.slots
		}
	}
}

// handle runs the handler on one delivery through [broker.Process] and
// settles the delivery as it decides.
func (s *subscription) handle(jm jetstream.Msg, hb *heartbeat) {
	md, err := jm.Metadata()
	if err != nil {
		s.opts.Logger.Error("nats: delivery without JetStream metadata", "topic", s.opts.Topic, "err", err)
		_ = jm.Nak()
		return
	}
	if s.opts.Queue == "" {
		for seq := md.Sequence.Stream; ; {
			last := s.lastSeq.Load()
			if seq <= last || s.lastSeq.CompareAndSwap(last, seq) {
				break
			}
		}
	}
	id, h := decodeHeader(jm.Headers())
	m := &broker.Message{
		ID:          id,
		Header:      h,
		Body:        jm.Data(),
		Topic:       s.opts.Topic,
		Attempt:     int(md.NumDelivered),
		PublishedAt: md.Timestamp,
	}
	hb.start(jm, time.Duration(s.heartbeat.Load()))
	d := broker.Process(s.ctx, s.h, m, s.opts)
	hb.stop()

	log := s.opts.Logger
	switch d.Action {
	case broker.Ack:
		err = jm.Ack()
	case broker.Retry:
		log.Debug("nats: handler failed; redelivering", "topic", m.Topic, "msg_id", m.ID, "attempt", m.Attempt, "delay", d.Delay, "err", d.Err)
		if d.Delay > 0 {
			err = jm.NakWithDelay(d.Delay)
		} else {
			err = jm.Nak()
		}
	case broker.DeadLetter:
		err = s.deadLetter(jm, m, d)
	}
	if err != nil {
		log.Warn("nats: cannot settle delivery; JetStream redelivers it after the ack wait",
			"topic", m.Topic, "msg_id", m.ID, "attempt", m.Attempt, "action", d.Action.String(), "err", err)
	}
}

// deadLetter publishes the dead letter of m and then terminates the
// delivery; if the publish fails, it negatively acknowledges it instead so
// that nothing is lost.
func (s *subscription) deadLetter(jm jetstream.Msg, m *broker.Message, d broker.Decision) error {
	o := s.opts
	ctx, cancel := context.WithTimeout(context.Background(), s.b.cfg.publishTimeout)
	defer cancel()
	if err := s.b.publish(ctx, o.DeadLetterTopic, broker.NewDeadLetter(m, o, d.Err)); err != nil {
		o.Logger.Error("nats: cannot dead-letter; redelivering", "topic", m.Topic, "msg_id", m.ID, "attempt", m.Attempt,
			"dead_letter_topic", o.DeadLetterTopic, "err", err)
		return errors.Join(err, jm.NakWithDelay(o.Backoff.Delay(m.Attempt)))
	}
	o.Logger.Warn("nats: dead-lettered", "topic", m.Topic, "msg_id", m.ID, "attempt", m.Attempt,
		"dead_letter_topic", o.DeadLetterTopic, "err", d.Err)
	return jm.TermWithReason("dead-lettered to " + o.DeadLetterTopic)
}

// Unsubscribe stops pulling (messages already pulled but not started go
// back to JetStream at once), waits for the handlers in flight until ctx is
// done, and then leaves: a queue group's consumer stays for the members that
// join later, a broadcast subscriber's consumer is deleted. When ctx ends
// first, the handlers' context is cancelled (their messages are redelivered)
// and the error wraps ctx's. Calls after the first return nil.
func (s *subscription) Unsubscribe(ctx context.Context) error {
	if !s.unsubscribed.CompareAndSwap(false, true) {
		return nil
	}
	defer func() {
		s.b.mu.Lock()
		delete(s.b.subs, s)
		s.b.mu.Unlock()
	}()
	close(s.stopping)
	s.stopLife()

	idle := make(chan struct{})
	go func() {
		<-s.done
		s.workers.Wait()
		close(idle)
	}()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = fmt.Errorf("nats: unsubscribe %q: handlers still running: %w", s.opts.Topic, ctx.Err())
	}
	s.cancel()
	s.deleteEphemeral()
	return err
}

// deleteEphemeral deletes a broadcast subscriber's consumer (best effort:
// the server deletes it anyway once it has been inactive for a while).
func (s *subscription) deleteEphemeral() {
	if s.opts.Queue != "" || !s.b.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.b.js.DeleteConsumer(ctx, s.stream, s.name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.opts.Logger.Debug("nats: delete broadcast consumer", "topic", s.opts.Topic, "consumer", s.name, "err", err)
	}
}

// heartbeat tells JetStream that a handler is still working on a message,
// so that a handler running longer than the AckWait does not have its
// message redelivered under it. Each worker has one, reused from message to
// message.
type heartbeat struct {
	mu    sync.Mutex
	m     jetstream.Msg
	every time.Duration
	t     *time.Timer
}

func newHeartbeat() *heartbeat {
	hb := &heartbeat{}
	hb.t = time.AfterFunc(time.Hour, hb.fire)
	hb.t.Stop()
	return hb
}

func (hb *heartbeat) start(m jetstream.Msg, every time.Duration) {
	hb.mu.Lock()
	hb.m, hb.every = m, every
	hb.t.Reset(every)
	hb.mu.Unlock()
}

func (hb *heartbeat) stop() {
	hb.mu.Lock()
	hb.m = nil
	hb.t.Stop()
	hb.mu.Unlock()
}

func (hb *heartbeat) fire() {
	hb.mu.Lock()
	m := hb.m
	hb.mu.Unlock()
	if m == nil {
		return
	}
	_ = m.InProgress() // best effort: a lost one costs a redelivery, not a message
	hb.mu.Lock()
	if hb.m == m {
		hb.t.Reset(hb.every)
	}
	hb.mu.Unlock()
}
