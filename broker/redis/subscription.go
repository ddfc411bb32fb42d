package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald/broker"
	goredis "github.com/redis/go-redis/v9"
)

// entry is one stream entry read by a subscription and not yet settled
// (acknowledged, scheduled again or given back).
type entry struct {
	stream  string // the key it was read from: the topic stream or the redo stream
	id      string
	isRedo  bool
	msg     *broker.Message
	attempt int

	// Guarded by the subscription's mutex.
	running   bool // handed to the handler
	abandoned bool // given back by a drain that ran out of time: drop the outcome
}

func (e *entry) key() string { return e.stream + "\x00" + e.id }

// subscription is one Subscribe call. Its goroutines:
//   - the fetcher reads new entries (XREADGROUP ">") of the topic stream and
//     the group's redo stream over a connection of its own;
//   - the reclaimer takes over entries left pending longer than AckWait
//     (XAUTOCLAIM) and keeps the entries it holds from being taken over
//     while they wait or run (XCLAIM JUSTID);
//   - the mover moves the group's due redeliveries to its redo stream;
//   - Concurrency workers run the handler;
//   - the acker acknowledges handled entries in batches.
type subscription struct {
	b         *Broker
	h         broker.Handler
	opts      *broker.SubscribeOptions
	group     string
	consumer  string
	broadcast bool
	stream    string // the topic's stream
	redo      string // the group's redo stream
	delay     string // the group's delay set
	limit     int    // most entries held at once

	ctx    context.Context // the handlers' context, cancelled by a drain that ran out of time
	cancel context.CancelFunc

	stop     chan struct{} // closed when Unsubscribe starts
	stopOnce sync.Once
	work     chan *entry
	freed    chan struct{} // a slot was freed (capacity 1)
	wake     chan struct{} // a redelivery was scheduled (capacity 1)
	clientID atomic.Int64  // the fetcher's connection, for CLIENT UNBLOCK
	handled  atomic.Int64  // entries settled, for the fetcher's window

	mu   sync.Mutex
	held map[string]*entry

	acks      chan *entry
	ackMu     sync.RWMutex
	acksShut  bool
	producers sync.WaitGroup // fetcher and reclaimer
	helpers   sync.WaitGroup // mover
	workersWG sync.WaitGroup
	workers   chan struct{} // closed when every worker has returned
	ackerDone chan struct{}
}

var _ broker.Subscription = (*subscription)(nil)

func newSubscription(b *Broker, h broker.Handler, o *broker.SubscribeOptions) *subscription {
	group := o.Queue
	if group == "" {
		group = broadcastGroupPrefix + broker.NewID()
	}
	limit := max(b.cfg.prefetch, 2*o.Concurrency)
	s := &subscription{
		b:         b,
		h:         h,
		opts:      o,
		group:     group,
		consumer:  consumerName(),
		broadcast: o.Queue == "",
		stream:    streamKey(b.cfg.prefix, o.Topic),
		redo:      redoKey(b.cfg.prefix, o.Topic, group),
		delay:     delayKey(b.cfg.prefix, o.Topic, group),
		limit:     limit,
		stop:      make(chan struct{}),
		work:      make(chan *entry, 2*limit+8),
		freed:     make(chan struct{}, 1),
		wake:      make(chan struct{}, 1),
		held:      map[string]*entry{},
		acks:      make(chan *entry, 4*limit+64),
		workers:   make(chan struct{}),
		ackerDone: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

func (s *subscription) start() {
	s.producers.Add(2)
	go s.fetch()
	go s.reclaim()
	s.helpers.Add(1)
	go s.move()
	go s.ackLoop()
	for range s.opts.Concurrency {
		s.workersWG.Go(s.workLoop)
	}
	go func() {
		s.producers.Wait()
		close(s.work)
		s.workersWG.Wait()
		close(s.workers)
	}()
}

// Topic returns the topic subscribed to.
func (s *subscription) Topic() string { return s.opts.Topic }

// Queue returns the queue group joined, or "" for a broadcast subscriber.
func (s *subscription) Queue() string { return s.opts.Queue }

func (s *subscription) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// Unsubscribe stops reading, waits for the handlers in flight (bounded by
// ctx) and leaves. Entries read but not handled yet go back to the group at
// once, through its redo stream. When ctx ends first, the deliveries still in
// flight go back too, with their attempt counted (their handlers' outcome is
// then ignored and their context cancelled), and the error wraps ctx.Err().
// A queue group keeps its entries for later members; a broadcast
// subscriber's group is destroyed. Calls after the first return nil.
func (s *subscription) Unsubscribe(ctx context.Context) error {
	first := false
	s.stopOnce.Do(func() { first = true; close(s.stop) })
	if !first {
		return nil
	}
	s.b.forget(s)
	s.stopProducers(ctx)

	var err error
	select {
	case <-s.workers:
	case <-ctx.Done():
		err = ctx.Err()
		s.abandon()
	}
	s.cancel()
	s.helpers.Wait()

	// Flush the acknowledgements of the handlers that finished.
	s.ackMu.Lock()
	s.acksShut = true
	close(s.acks)
	s.ackMu.Unlock()
	fctx, cancel := graceContext(ctx)
	defer cancel()
	select {
	case <-s.ackerDone:
	case <-fctx.Done():
		if err == nil {
			err = fctx.Err()
		}
	}

	if s.broadcast {
		s.destroyGroup(fctx)
	} else if err == nil {
		s.leaveGroup(fctx)
	}
	if err != nil {
		return fmt.Errorf("redis: unsubscribe %q: %w", s.opts.Topic, err)
	}
	return nil
}

// graceContext is ctx, or a second more when ctx is done: what is left to
// send (acknowledgements, the group's removal) saves redeliveries.
func graceContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx.Err() == nil {
		return ctx, func() {}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), time.Second)
}

// stopProducers waits for the fetcher and the reclaimer to return, waking
// the fetcher's XREADGROUP until it does: a read sent just after a wake-up
// would otherwise block, and take entries given back meanwhile. It waits a
// second at most once ctx is done (the fetcher's connection is closed with
// the broker).
func (s *subscription) stopProducers(ctx context.Context) {
	done := make(chan struct{})
	go func() { s.producers.Wait(); close(done) }()
	gctx, cancel := graceContext(ctx)
	defer cancel()
	for {
		s.unblock()
		select {
		case <-done:
			return
		case <-gctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// unblock wakes the fetcher's XREADGROUP so that it sees the stop at once.
func (s *subscription) unblock() {
	if id := s.clientID.Load(); id != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.b.client.ClientUnblock(ctx, id).Err()
	}
}

// leaveGroup removes the subscription's consumer from its group when it
// holds no pending entry (one that does is kept so that its entries can be
// taken over).
func (s *subscription) leaveGroup(ctx context.Context) {
	c := s.b.client
	for _, key := range []string{s.stream, s.redo} {
		p, err := c.XPending(ctx, key, s.group).Result()
		if err != nil || p.Consumers[s.consumer] > 0 {
			continue
		}
		_ = c.XGroupDelConsumer(ctx, key, s.group, s.consumer).Err()
	}
}

// abandon gives back every entry held after a drain ran out of time: those
// in flight count as an attempt, the others do not. Their handlers' outcome
// is dropped.
func (s *subscription) abandon() {
	s.mu.Lock()
	var es []*entry
	running := 0
	for k, e := range s.held {
		e.abandoned = true
		if e.running {
			e.attempt++
			running++
		}
		es = append(es, e)
		delete(s.held, k)
	}
	s.mu.Unlock()
	if running > 0 {
		s.opts.Logger.Warn("redis: handlers still running when the drain ended; their deliveries go back to the group",
			"topic", s.opts.Topic, "queue", s.opts.Queue, "abandoned", running)
	}
	if !s.broadcast && len(es) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.requeue(ctx, es)
	}
}

// hold records es as held, dropping those already held (an entry taken over
// from this very subscription), and returns the others.
func (s *subscription) hold(es []*entry) []*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := es[:0]
	for _, e := range es {
		if _, dup := s.held[e.key()]; dup {
			continue
		}
		s.held[e.key()] = e
		out = append(out, e)
	}
	return out
}

// window sizes how many entries the fetcher keeps held: about
// windowTarget of handling at the rate measured, between min and max. Fast
// handlers get large reads (few round trips and fsyncs per entry); slow
// ones hold few entries, which stay available to the other members of the
// group.
type window struct {
	min, max int
	rate     float64 // entries settled per second, smoothed
	last     int64   // settled count at the last sample
	at       time.Time
}

// windowTarget is how much handling the window holds.
const windowTarget = 100 * time.Millisecond

// size returns the window for a settled count of settled.
func (w *window) size(settled int64) int {
	if dt := time.Since(w.at); dt >= 5*time.Millisecond {
		r := float64(settled-w.last) / dt.Seconds()
		w.rate = (w.rate + r) / 2
		w.last, w.at = settled, time.Now()
	}
	return min(max(int(w.rate*windowTarget.Seconds()), w.min), w.max)
}

func (s *subscription) heldCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}

// free returns how many more entries the subscription may hold.
func (s *subscription) free() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit - len(s.held)
}

// settle removes e from the held entries; it reports false when a drain
// gave e back already, in which case the caller must drop it.
func (s *subscription) settle(e *entry) bool {
	s.mu.Lock()
	if e.abandoned {
		s.mu.Unlock()
		return false
	}
	delete(s.held, e.key())
	s.mu.Unlock()
	s.handled.Add(1)
	select {
	case s.freed <- struct{}{}:
	default:
	}
	return true
}

// fetch reads new entries until the subscription stops.
func (s *subscription) fetch() {
	defer s.producers.Done()
	ctx := context.Background()
	var conn *goredis.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close()
		}
	}()
	fails := 0
	backoff := broker.Backoff{Initial: 50 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2, Jitter: 0.2}
	w := window{min: 2 * s.opts.Concurrency, max: s.limit, at: time.Now()}
	for !s.stopping() {
		// Read again once half the window is free, not at every freed
		// slot: each XREADGROUP is a round trip and, on a server that
		// fsyncs every write (its PEL changes), an fsync.
		win := w.size(s.handled.Load())
		free := win - s.heldCount()
		if free < (win+1)/2 {
			select {
			case <-s.freed:
			case <-s.stop:
			}
			continue
		}
		if conn == nil {
			conn = s.b.blocking.Conn()
			id, err := conn.ClientID(ctx).Result()
			if err != nil {
				_ = conn.Close()
				conn = nil
				fails++
				s.opts.Logger.Warn("redis: cannot reach the server to read", "topic", s.opts.Topic, "err", err)
				if !s.pause(backoff.Delay(fails)) {
					return
				}
				continue
			}
			s.clientID.Store(id)
			if s.stopping() {
				return
			}
		}
		streams, err := conn.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group:    s.group,
			Consumer: s.consumer,
			Streams:  []string{s.stream, s.redo, ">", ">"},
			Count:    int64(free), // per stream: the redo stream is mostly empty, and the work channel holds twice the limit
			Block:    s.b.cfg.block,
		}).Result()
		switch {
		case errors.Is(err, goredis.Nil):
			fails = 0
			continue
		case err != nil:
			fails++
			if goredis.HasErrorPrefix(err, "NOGROUP") {
				s.opts.Logger.Warn("redis: consumer group missing; creating it again", "topic", s.opts.Topic, "group", s.group)
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err = s.createGroups(cctx)
				cancel()
				if err == nil {
					continue
				}
			}
			s.opts.Logger.Warn("redis: read failed", "topic", s.opts.Topic, "group", s.group, "err", err)
			_ = conn.Close()
			conn = nil
			if !s.pause(backoff.Delay(fails)) {
				return
			}
			continue
		}
		fails = 0
		var es []*entry
		for _, st := range streams {
			for _, xm := range st.Messages {
				if e := s.entry(st.Stream, xm, 1); e != nil {
					es = append(es, e)
				}
			}
		}
		s.dispatch(es)
	}
}

// pause waits d or until the subscription stops; it reports whether d passed.
func (s *subscription) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stop:
		return false
	}
}

// entry decodes one stream entry delivered count times. A malformed redo
// entry is acknowledged and dropped (with a warning): it cannot be handled.
func (s *subscription) entry(stream string, xm goredis.XMessage, count int64) *entry {
	e := &entry{stream: stream, id: xm.ID, isRedo: stream == s.redo}
	if !e.isRedo {
		e.msg = decodeEntry(s.opts.Topic, xm.ID, xm.Values)
		e.attempt = int(max(count, 1))
		return e
	}
	r, err := decodeRedo(s.opts.Topic, str(xm.Values[fieldRedo]))
	if err != nil {
		s.opts.Logger.Error("redis: dropping a malformed redelivery entry", "topic", s.opts.Topic, "group", s.group, "entry", xm.ID, "err", err)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.b.client.XAck(ctx, stream, s.group, xm.ID).Err()
		return nil
	}
	e.msg, e.attempt = r.m, r.attempt+int(max(count, 1))-1
	return e
}

// dispatch hands es to the workers.
func (s *subscription) dispatch(es []*entry) {
	for _, e := range s.hold(es) {
		s.work <- e // never blocks: the channel holds twice the limit
	}
}

// workLoop runs the handler on entries until the subscription stops; the
// entries it gets after the stop go back to the group unhandled.
func (s *subscription) workLoop() {
	var given []*entry
	for e := range s.work {
		if s.stopping() {
			if s.settle(e) && !s.broadcast {
				given = append(given, e)
			}
			continue
		}
		s.handle(e)
	}
	if len(given) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.requeue(ctx, given)
	}
}

// handle runs the handler on e and settles e as it decides.
func (s *subscription) handle(e *entry) {
	s.mu.Lock()
	if e.abandoned {
		s.mu.Unlock()
		return
	}
	e.running = true
	s.mu.Unlock()

	m := e.msg
	m.Attempt = e.attempt
	d := broker.Process(s.ctx, s.h, m, s.opts)
	if !s.settle(e) {
		return
	}
	switch d.Action {
	case broker.Ack:
		s.ack(e)
	case broker.Retry:
		s.opts.Logger.Debug("redis: handler failed; redelivering",
			"topic", s.opts.Topic, "msg_id", m.ID, "attempt", m.Attempt, "delay", d.Delay, "err", d.Err)
		s.retry(e, d.Delay)
	case broker.DeadLetter:
		s.deadLetter(e, d.Err)
	}
}

// ack queues e's acknowledgement for the acker.
func (s *subscription) ack(e *entry) {
	s.ackMu.RLock()
	defer s.ackMu.RUnlock()
	if s.acksShut {
		return // a drain gave up; the entry stays pending and is taken over after AckWait
	}
	s.acks <- e
}

// ackLoop acknowledges entries in batches: one XACK per stream (and XDEL
// for redo entries, which only this group reads) for the entries handled
// within ackLinger of the first, up to maxAckBatch. A handler's ack is not
// waited for: the entry is settled, and a crash before the XACK only makes
// it come back after AckWait.
func (s *subscription) ackLoop() {
	defer close(s.ackerDone)
	batch := make([]*entry, 0, 256)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for e := range s.acks {
		batch = append(batch[:0], e)
		linger.Reset(ackLinger)
	more:
		for len(batch) < maxAckBatch {
			select {
			case e, ok := <-s.acks:
				if !ok {
					break more
				}
				batch = append(batch, e)
			case <-linger.C:
				break more
			}
		}
		linger.Stop()
		s.flushAcks(batch)
	}
}

// Acknowledgement batching: each XACK is a round trip and, on a server that
// fsyncs every write, an fsync.
const (
	ackLinger   = 2 * time.Millisecond
	maxAckBatch = 1024
)

func (s *subscription) flushAcks(batch []*entry) {
	var topicIDs, redoIDs []string
	for _, e := range batch {
		if e.isRedo {
			redoIDs = append(redoIDs, e.id)
		} else {
			topicIDs = append(topicIDs, e.id)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := retry(ctx, func() error {
		_, err := s.b.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			if len(topicIDs) > 0 {
				p.XAck(ctx, s.stream, s.group, topicIDs...)
			}
			if len(redoIDs) > 0 {
				p.XAck(ctx, s.redo, s.group, redoIDs...)
				p.XDel(ctx, s.redo, redoIDs...)
			}
			return nil
		})
		return err
	})
	if err != nil {
		s.opts.Logger.Warn("redis: cannot acknowledge; the entries will be delivered again after AckWait",
			"topic", s.opts.Topic, "group", s.group, "entries", len(batch), "err", err)
	}
}

// retry schedules e's message again after delay, with its attempt counted,
// and acknowledges e, in one step. With no delay it goes straight to the
// group's redo stream.
func (s *subscription) retry(e *entry, delay time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := redo{m: e.msg, attempt: e.attempt + 1, nonce: e.key()}
	if delay <= 0 {
		e.attempt++
		s.requeue(ctx, []*entry{e})
		return
	}
	del := "0"
	if e.isRedo {
		del = "1"
	}
	ms := max(delay.Milliseconds(), 1)
	err := retry(ctx, func() error {
		return s.b.scripts.delay.Run(ctx, s.b.client, []string{e.stream, s.delay}, s.group, e.id, ms, encodeRedo(r), del, s.consumer).Err()
	})
	if err != nil {
		s.opts.Logger.Warn("redis: cannot schedule a redelivery; the entry will be delivered again after AckWait",
			"topic", s.opts.Topic, "group", s.group, "msg_id", e.msg.ID, "err", err)
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// requeue gives es back to the group through its redo stream at once, each
// with the attempt its entry has.
func (s *subscription) requeue(ctx context.Context, es []*entry) {
	byStream := map[string][]any{}
	for _, e := range es {
		r := redo{m: e.msg, attempt: e.attempt, nonce: e.key()}
		byStream[e.stream] = append(byStream[e.stream], e.id, encodeRedo(r))
	}
	for stream, pairs := range byStream {
		del := "0"
		if stream == s.redo {
			del = "1"
		}
		args := append([]any{s.group, del, s.consumer}, pairs...)
		err := retry(ctx, func() error {
			return s.b.scripts.requeue.Run(ctx, s.b.client, []string{stream, s.redo}, args...).Err()
		})
		if err != nil {
			s.opts.Logger.Warn("redis: cannot give entries back; they will be delivered again after AckWait",
				"topic", s.opts.Topic, "group", s.group, "entries", len(pairs)/2, "err", err)
		}
	}
}

// deadLetter publishes the dead letter of e's message to the dead-letter
// topic, then acknowledges e; when the publish fails, e is retried instead
// so that nothing is lost.
func (s *subscription) deadLetter(e *entry, reason error) {
	m := e.msg
	ctx, cancel := context.WithTimeout(context.Background(), s.b.cfg.publishTimeout)
	defer cancel()
	if err := s.b.publish(ctx, s.opts.DeadLetterTopic, broker.NewDeadLetter(m, s.opts, reason)); err != nil {
		s.opts.Logger.Error("redis: cannot publish a dead letter; redelivering the message instead",
			"topic", s.opts.Topic, "queue", s.opts.Queue, "msg_id", m.ID, "dead_letter_topic", s.opts.DeadLetterTopic, "err", err)
		s.retry(e, s.opts.Backoff.Delay(m.Attempt))
		return
	}
	s.opts.Logger.Warn("redis: message dead-lettered",
		"topic", s.opts.Topic, "queue", s.opts.Queue, "msg_id", m.ID, "attempt", m.Attempt,
		"dead_letter_topic", s.opts.DeadLetterTopic, "err", reason)
	s.ack(e)
}
