package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald/broker"
	amqp "github.com/rabbitmq/amqp091-go"
)

// session is a subscription's consumer on one channel. A lost channel or
// connection ends it; the subscription then opens a new one.
type session struct {
	conn       *amqp.Connection
	ch         *amqp.Channel
	deliveries <-chan amqp.Delivery
	closed     chan *amqp.Error
	cancelled  chan string // the server cancelled the consumer (its queue was deleted)
}

// subscription is one Subscribe call: Concurrency workers handling the
// deliveries of its current session, and a supervisor that opens a new
// session when the current one is lost.
type subscription struct {
	b         *Broker
	h         broker.Handler
	opts      *broker.SubscribeOptions
	queue     string // the queue consumed
	broadcast bool
	tag       string // consumer tag
	prefetch  int

	ctx       context.Context // the handlers' context, cancelled by a drain that ran out of time
	cancel    context.CancelFunc
	stop      chan struct{} // closed when Unsubscribe starts
	stopCtx   context.Context
	stopNow   context.CancelFunc // cancels stopCtx, with stop
	stopOnce  sync.Once
	abandoned atomic.Bool // the drain ran out of time: handlers' outcomes are dropped

	mu       sync.Mutex
	sess     *session
	changed  chan struct{}               // closed and replaced when sess changes
	declared map[string]*amqp.Connection // retry queues declared, and on which connection

	workers   sync.WaitGroup
	idle      chan struct{} // closed when every worker has returned
	superDone chan struct{}
}

var _ broker.Subscription = (*subscription)(nil)

func newSubscription(b *Broker, h broker.Handler, o *broker.SubscribeOptions) *subscription {
	s := &subscription{
		b:         b,
		h:         h,
		opts:      o,
		broadcast: o.Queue == "",
		tag:       "herald-" + broker.NewID(),
		prefetch:  min(max(b.cfg.prefetch, 2*o.Concurrency), 65535),
		stop:      make(chan struct{}),
		changed:   make(chan struct{}),
		declared:  map[string]*amqp.Connection{},
		idle:      make(chan struct{}),
		superDone: make(chan struct{}),
	}
	if s.broadcast {
		s.queue = broadcastQueue(b.cfg.exchange, o.Topic, broker.NewID())
	} else {
		s.queue = groupQueue(b.cfg.exchange, o.Topic, o.Queue)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.stopCtx, s.stopNow = context.WithCancel(context.Background())
	return s
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

func (s *subscription) warn(msg string, args ...any) {
	s.opts.Logger.Warn(msg, append(args, "topic", s.opts.Topic, "queue", s.opts.Queue)...)
}

// open declares the subscription's queues on the consuming connection and
// starts a consumer on a new channel.
func (s *subscription) open(ctx context.Context) (*session, error) {
	conn, err := s.b.sub.get(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.b.declare(conn, s.warn, s.mainQueues()...); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	sess := &session{conn: conn, ch: ch, closed: ch.NotifyClose(make(chan *amqp.Error, 1)), cancelled: ch.NotifyCancel(make(chan string, 1))}
	if err := ch.Qos(s.prefetch, 0, false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("set prefetch: %w", err)
	}
	sess.deliveries, err = ch.Consume(s.queue, s.tag, false, false, false, false, nil)
	if err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("consume %q: %w", s.queue, err)
	}
	return sess, nil
}

// start runs the workers on sess and the supervisor.
func (s *subscription) start(sess *session) {
	s.setSession(sess)
	for range s.opts.Concurrency {
		s.workers.Go(s.work)
	}
	go func() {
		s.workers.Wait()
		close(s.idle)
	}()
	go s.supervise(sess)
}

func (s *subscription) setSession(sess *session) {
	s.mu.Lock()
	s.sess = sess
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *subscription) session() *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sess
}

// supervise opens a new session whenever the current one is lost, until the
// subscription stops.
func (s *subscription) supervise(sess *session) {
	defer close(s.superDone)
	backoff := broker.Backoff{Initial: 50 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2, Jitter: 0.2}
	for {
		select {
		case <-s.stop:
			return
		case err := <-sess.closed:
			if s.stopping() {
				return
			}
			s.warn("rabbitmq: consumer channel lost; consuming again", "err", err)
		case <-sess.cancelled:
			if s.stopping() {
				return
			}
			s.warn("rabbitmq: the server cancelled the consumer (queue deleted?); declaring and consuming again")
			_ = sess.ch.Close()
		}
		for n := 1; ; n++ {
			t := time.NewTimer(backoff.Delay(n))
			select {
			case <-s.stop:
				t.Stop()
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(s.stopCtx, 10*time.Second)
			next, err := s.open(ctx)
			cancel()
			if err != nil {
				if n == 1 || n%10 == 0 {
					s.warn("rabbitmq: cannot consume yet", "attempt", n, "err", err)
				}
				continue
			}
			if s.stopping() {
				_ = next.ch.Close()
				return
			}
			sess = next
			s.setSession(sess)
			break
		}
	}
}

// work handles the deliveries of each session in turn until the
// subscription stops. Deliveries that arrive after the stop are left
// unacknowledged: closing the channel gives them back to the queue.
func (s *subscription) work() {
	var last *session
	for {
		sess := s.nextSession(last)
		if sess == nil {
			return
		}
		for d := range sess.deliveries {
			if s.stopping() {
				continue
			}
			s.handle(sess, &d)
		}
		last = sess
	}
}

// nextSession waits for a session other than last; nil once stopping.
func (s *subscription) nextSession(last *session) *session {
	for {
		s.mu.Lock()
		sess, changed := s.sess, s.changed
		s.mu.Unlock()
		if s.stopping() {
			return nil
		}
		if sess != last {
			return sess
		}
		select {
		case <-changed:
		case <-s.stop:
			return nil
		}
	}
}

// handle runs the handler on d and settles d as it decides.
func (s *subscription) handle(sess *session, d *amqp.Delivery) {
	m := message(d)
	if s.broadcast || m.Topic == "" {
		m.Topic = s.opts.Topic
	}
	dec := broker.Process(s.ctx, s.h, m, s.opts)
	if s.abandoned.Load() {
		return // the channel is closed: the server gave d back to the queue
	}
	switch dec.Action {
	case broker.Ack:
		if err := d.Ack(false); err != nil {
			s.warn("rabbitmq: cannot acknowledge; the message will be delivered again", "msg_id", m.ID, "err", err)
		}
	case broker.Retry:
		s.opts.Logger.Debug("rabbitmq: handler failed; redelivering",
			"topic", s.opts.Topic, "msg_id", m.ID, "attempt", m.Attempt, "delay", dec.Delay, "err", dec.Err)
		s.redeliver(sess, d, m, dec.Delay)
	case broker.DeadLetter:
		s.deadLetter(sess, d, m, dec.Err)
	}
}

// redeliver publishes a copy of d, with its attempt counted, to the retry
// queue of delay's bucket (or straight back to the subscription's queue
// when there is no delay), then acknowledges d. If the copy cannot be
// published, d is given back to its queue (nack with requeue) instead.
func (s *subscription) redeliver(sess *session, d *amqp.Delivery, m *broker.Message, delay time.Duration) {
	target := s.queue
	if delay > 0 {
		spec := s.retrySpec(bucket(delay))
		if err := s.ensureRetryQueue(sess.conn, spec); err != nil {
			s.warn("rabbitmq: cannot declare a retry queue; requeueing at once", "retry_queue", spec.name, "err", err)
			s.nack(d, m)
			return
		}
		target = spec.name
	}
	h := make(amqp.Table, len(d.Headers)+2)
	for k, v := range d.Headers {
		if !strings.HasPrefix(k, "x-") {
			h[k] = v
		}
	}
	h[headerAttempt] = int32(m.Attempt + 1)
	h[headerTopic] = m.Topic
	p := amqp.Publishing{
		Headers:      h,
		MessageId:    d.MessageId,
		Timestamp:    d.Timestamp,
		DeliveryMode: amqp.Persistent,
		Body:         d.Body,
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.b.cfg.publishTimeout)
	defer cancel()
	if err := s.b.publish(ctx, "", target, []amqp.Publishing{p}); err != nil {
		s.warn("rabbitmq: cannot publish a redelivery; requeueing at once", "msg_id", m.ID, "err", err)
		s.nack(d, m)
		return
	}
	if err := d.Ack(false); err != nil {
		s.warn("rabbitmq: cannot acknowledge a redelivered message; it may be delivered twice", "msg_id", m.ID, "err", err)
	}
}

// nack gives d back to its queue at once.
func (s *subscription) nack(d *amqp.Delivery, m *broker.Message) {
	if err := d.Nack(false, true); err != nil {
		s.warn("rabbitmq: cannot give a message back; the server will when the channel closes", "msg_id", m.ID, "err", err)
	}
}

// ensureRetryQueue declares spec on conn unless this subscription did
// already.
func (s *subscription) ensureRetryQueue(conn *amqp.Connection, spec queueSpec) error {
	s.mu.Lock()
	done := s.declared[spec.name] == conn
	s.mu.Unlock()
	if done {
		return nil
	}
	if err := s.b.declare(conn, s.warn, spec); err != nil {
		return err
	}
	s.mu.Lock()
	s.declared[spec.name] = conn
	s.mu.Unlock()
	return nil
}

// deadLetter publishes the dead letter of m to the dead-letter topic, then
// acknowledges d; when the publish fails, m is redelivered instead so that
// nothing is lost.
func (s *subscription) deadLetter(sess *session, d *amqp.Delivery, m *broker.Message, reason error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.b.cfg.publishTimeout)
	defer cancel()
	dl := publishing(broker.NewDeadLetter(m, s.opts, reason), time.Now())
	if err := s.b.publish(ctx, s.b.cfg.exchange, s.opts.DeadLetterTopic, []amqp.Publishing{dl}); err != nil {
		s.opts.Logger.Error("rabbitmq: cannot publish a dead letter; redelivering the message instead",
			"topic", s.opts.Topic, "queue", s.opts.Queue, "msg_id", m.ID, "dead_letter_topic", s.opts.DeadLetterTopic, "err", err)
		s.redeliver(sess, d, m, s.opts.Backoff.Delay(m.Attempt))
		return
	}
	s.opts.Logger.Warn("rabbitmq: message dead-lettered",
		"topic", s.opts.Topic, "queue", s.opts.Queue, "msg_id", m.ID, "attempt", m.Attempt,
		"dead_letter_topic", s.opts.DeadLetterTopic, "err", reason)
	if err := d.Ack(false); err != nil {
		s.warn("rabbitmq: cannot acknowledge a dead-lettered message; it may be delivered again", "msg_id", m.ID, "err", err)
	}
}

// Unsubscribe stops consuming (basic.cancel), waits for the handlers in
// flight (bounded by ctx), then closes the channel, which gives the messages
// received but not handled back to the queue. When ctx ends first, the
// channel is closed at once: the server gives the deliveries in flight back
// to the queue too (their handlers' outcome is then ignored and their
// context cancelled), and the error wraps ctx.Err(). A queue group's queue
// keeps its messages for later members; a broadcast subscriber's queues are
// deleted. Calls after the first return nil.
func (s *subscription) Unsubscribe(ctx context.Context) error {
	first := false
	s.stopOnce.Do(func() { first = true; close(s.stop); s.stopNow() })
	if !first {
		return nil
	}
	s.b.forget(s)
	sess := s.session()
	if sess != nil {
		cancelConsumer(sess.ch, s.tag)
	}
	var err error
	select {
	case <-s.idle:
	case <-ctx.Done():
		err = ctx.Err()
		s.abandoned.Store(true)
		s.warn("rabbitmq: handlers still running when the drain ended; their deliveries go back to the queue")
	}
	<-s.superDone
	if sess := s.session(); sess != nil {
		_ = sess.ch.Close()
		if s.broadcast {
			s.deleteQueues(sess.conn)
		}
	}
	s.cancel()
	if err != nil {
		return fmt.Errorf("rabbitmq: unsubscribe %q: %w", s.opts.Topic, err)
	}
	return nil
}

// cancelConsumer stops the server's deliveries to tag, bounded in time: on a
// connection that is going away the cancel may get no answer.
func cancelConsumer(ch *amqp.Channel, tag string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ch.Cancel(tag, false)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = ch.Close()
	}
}

// deleteQueues deletes a broadcast subscriber's queue and retry queues
// (they would go with the connection anyway, being exclusive).
func (s *subscription) deleteQueues(conn *amqp.Connection) {
	if conn.IsClosed() {
		return
	}
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	defer func() { _ = ch.Close() }()
	s.mu.Lock()
	names := append([]string{s.queue}, keys(s.declared)...)
	s.mu.Unlock()
	for _, name := range names {
		if _, err := ch.QueueDelete(name, false, false, false); err != nil {
			var ae *amqp.Error
			if errors.As(err, &ae) && ae.Code == amqp.NotFound {
				if ch, err = conn.Channel(); err != nil {
					return
				}
				continue
			}
			return
		}
	}
}

func keys(m map[string]*amqp.Connection) []string {
	out := make([]string, 0, len(m))
	for k := range maps.Keys(m) {
		out = append(out, k)
	}
	return out
}
