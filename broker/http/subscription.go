package httpbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/registry"
)

// subscription is one Subscribe: a handler behind the endpoint, registered
// in the registry.
type subscription struct {
	b     *Broker
	id    string
	topic string
	queue string
	opts  *broker.SubscribeOptions
	h     broker.Handler
	sem   chan struct{} // Concurrency

	ctx    context.Context // the handlers' context: cancelled only when a drain runs out of time
	cancel context.CancelFunc

	inst registry.Instance

	mu       sync.Mutex
	stopped  bool
	stopping chan struct{}  // closed by Unsubscribe: start no more handlers
	abandon  chan struct{}  // closed when Unsubscribe's context ended first
	active   sync.WaitGroup // requests being served
	running  sync.WaitGroup // handlers running
}

var _ broker.Subscription = (*subscription)(nil)

func (s *subscription) Topic() string { return s.topic }
func (s *subscription) Queue() string { return s.queue }

func newSubscriptionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "s" + hex.EncodeToString(b[:])
}

// keepAlive is how often a delivery in progress tells its publisher that
// handlers are still running.
func (s *subscription) keepAlive() time.Duration {
	return max(20*time.Millisecond, min(s.opts.AckWait/3, 5*time.Second))
}

// Subscribe registers a subscription of topic in the registry and hands
// the deliveries that reach the endpoint to h, through [broker.Process].
// The endpoint is opened by the first Subscribe. With [broker.Queue], the
// group is recorded first, in the registry and in this broker's spool (see
// [Broker.DeclareGroup]): it exists, durably, once Subscribe returns.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	o, err := broker.NewSubscribeOptions(topic, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("http: subscribe %q: %w", topic, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("http: subscribe %q: %w", topic, err)
	}
	if b.isClosed() {
		return nil, fmt.Errorf("http: subscribe %q: %w", topic, broker.ErrClosed)
	}
	base, err := b.listen()
	if err != nil {
		return nil, fmt.Errorf("http: subscribe %q: %w", topic, err)
	}
	s := &subscription{
		b:        b,
		id:       newSubscriptionID(),
		topic:    topic,
		queue:    o.Queue,
		opts:     o,
		h:        h,
		sem:      make(chan struct{}, o.Concurrency),
		stopping: make(chan struct{}),
		abandon:  make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	md := map[string]string{
		metaTopic:       topic,
		metaConcurrency: strconv.Itoa(o.Concurrency),
		metaAckWait:     strconv.FormatInt(o.AckWait.Milliseconds(), 10),
		metaProtocol:    protocolVersion,
	}
	if o.Queue != "" {
		md[metaQueue] = o.Queue
	}
	s.inst = registry.Instance{Service: ServiceName(topic), ID: s.id, Addr: base + DeliveryPath + s.id, Metadata: md}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.cancel()
		return nil, fmt.Errorf("http: subscribe %q: %w", topic, broker.ErrClosed)
	}
	b.subs[s.id] = s
	b.mu.Unlock()

	fail := func(err error) (broker.Subscription, error) {
		b.mu.Lock()
		delete(b.subs, s.id)
		b.mu.Unlock()
		s.cancel()
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = b.reg.Deregister(dctx, s.inst)
		return nil, fmt.Errorf("http: subscribe %q: %w", topic, err)
	}
	if o.Queue != "" {
		// The group exists from now on, durably, for every publisher. It is
		// recorded before the member is listed, so that a member is never
		// seen without its group's record: a publisher that starts after
		// the member is gone (crashed right after Subscribe, say) still
		// keeps the group's messages. A group recorded by a Subscribe that
		// fails afterwards stays, as groups do, until ForgetGroup.
		if err := b.recordGroup(ctx, topic, o.Queue); err != nil {
			return fail(err)
		}
	}
	if err := b.reg.Register(ctx, s.inst, registry.TTL(b.cfg.ttl)); err != nil {
		return fail(err)
	}
	b.log.Debug("http broker: subscribed", "topic", topic, "queue", o.Queue, "subscription", s.id)
	return s, nil
}

// enter admits a request unless the subscription is stopping.
func (s *subscription) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.active.Add(1)
	return true
}

// startHandler admits a handler unless the subscription is stopping.
func (s *subscription) startHandler() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.running.Add(1)
	return true
}

// Unsubscribe deregisters the subscription, answers the deliveries not yet
// started as not run (their publishers send them elsewhere), waits for the
// handlers in flight (bounded by ctx) and sends their results. When ctx ends
// first, the handlers still running are abandoned: their context is
// cancelled and their publishers deliver their messages again.
func (s *subscription) Unsubscribe(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	close(s.stopping)
	s.mu.Unlock()

	b := s.b
	// Deregister even when ctx is short: a listing left behind makes
	// publishers try this endpoint until its lease runs out.
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if err := b.reg.Deregister(dctx, s.inst); err != nil {
		b.log.Warn("http broker: deregister subscription", "topic", s.topic, "subscription", s.id, "err", err)
	}
	dcancel()

	done := make(chan struct{})
	go func() {
		s.active.Wait()
		s.running.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		close(s.abandon)
		s.cancel()
		err = fmt.Errorf("http: unsubscribe %q: handlers still running: %w", s.topic, ctx.Err())
	}
	b.mu.Lock()
	delete(b.subs, s.id)
	b.mu.Unlock()
	if err == nil {
		s.cancel()
	}
	return err
}

// result is the outcome of one message of a delivery.
type result struct {
	i     int
	s     status
	delay time.Duration
}

// serve runs a delivery's handlers, up to the subscription's concurrency,
// and streams their results back as they finish.
func (s *subscription) serve(w http.ResponseWriter, r *http.Request, nonce string, msgs []*broker.Message) {
	if !s.enter() {
		refuse(w, http.StatusGone, "subscription stopped")
		return
	}
	defer s.active.Done()
	b := s.b
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", contentTypeResults)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}

	results := make(chan result, len(msgs)) // never blocks a handler
	started := make([]atomic.Bool, len(msgs))
	go s.dispatch(r.Context(), msgs, results, started)

	mac := resultsMAC(b.sign.keys[0], nonce)
	answered := make([]bool, len(msgs))
	left := len(msgs)
	buf := make([]byte, 0, 256)
	frame := make([]byte, 0, 32)
	put := func(res result) {
		if answered[res.i] {
			return
		}
		answered[res.i] = true
		left--
		frame = appendResult(frame[:0], res.i, res.s, res.delay)
		mac.Write(frame)
		buf = append(buf, frame...)
	}
	send := func() bool {
		buf = append(buf, frameCheckpoint)
		buf = mac.Sum(buf)
		_, err := w.Write(buf)
		buf = buf[:0]
		return err == nil && rc.Flush() == nil
	}
	ka := time.NewTicker(s.keepAlive())
	defer ka.Stop()
	for left > 0 {
		select {
		case res := <-results:
			put(res)
			for more := true; more; {
				select {
				case res := <-results:
					put(res)
				default:
					more = false
				}
			}
			if !send() {
				return
			}
		case <-ka.C:
			if _, err := w.Write([]byte{frameKeepAlive}); err != nil || rc.Flush() != nil {
				return
			}
		case <-s.abandon:
			for i := range msgs {
				if !answered[i] {
					st := statusNotRun
					if started[i].Load() {
						st = statusAbandoned
					}
					put(result{i: i, s: st})
				}
			}
			send()
			return
		case <-r.Context().Done():
			return // the publisher went away; it sends the unanswered again
		}
	}
}

// dispatch starts the handlers in order, each once a concurrency slot is
// free; once the subscription stops, the rest are answered as not run.
func (s *subscription) dispatch(ctx context.Context, msgs []*broker.Message, results chan<- result, started []atomic.Bool) {
	notRun := func(from int) {
		for j := from; j < len(msgs); j++ {
			results <- result{i: j, s: statusNotRun}
		}
	}
	for i, m := range msgs {
		select {
		case s.sem <- struct{}{}:
		case <-s.stopping:
			notRun(i)
			return
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil {
			<-s.sem
			return
		}
		if !s.startHandler() {
			<-s.sem
			notRun(i)
			return
		}
		started[i].Store(true)
		s.b.stats.handled.Add(1)
		go func() {
			defer s.running.Done()
			defer func() { <-s.sem }()
			results <- s.handle(i, m)
		}()
	}
}

// handle runs the handler on one message through broker.Process and turns
// the decision into a result; a dead letter is published through this
// broker's own spool before the message is acknowledged.
func (s *subscription) handle(i int, m *broker.Message) result {
	d := broker.Process(s.ctx, s.h, m, s.opts)
	switch d.Action {
	case broker.Ack:
		return result{i: i, s: statusAck}
	case broker.DeadLetter:
		dl := broker.NewDeadLetter(m, s.opts, d.Err)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 30*time.Second)
		defer cancel()
		if err := s.b.publish(ctx, s.opts.DeadLetterTopic, []*broker.Message{dl}, true); err != nil {
			s.opts.Logger.Warn("http broker: dead letter not published; the message will be delivered again",
				"topic", s.topic, "msg_id", m.ID, "attempt", m.Attempt, "err", err)
			return result{i: i, s: statusRetry, delay: s.opts.Backoff.Delay(m.Attempt)}
		}
		s.b.stats.deadLettered.Add(1)
		return result{i: i, s: statusAck}
	default:
		s.opts.Logger.Debug("http broker: handler failed; redelivering", "topic", s.topic, "msg_id", m.ID, "attempt", m.Attempt, "delay", d.Delay, "err", d.Err)
		return result{i: i, s: statusRetry, delay: d.Delay}
	}
}
