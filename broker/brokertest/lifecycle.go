package brokertest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald/broker"
)

// blocker is a handler that blocks every call until released, and
// signals when the first call starts. It ignores its context unless told
// otherwise, as a stuck handler would.
type blocker struct {
	started     chan struct{}
	release     chan struct{}
	startOnce   sync.Once
	releaseOnce sync.Once
	finished    atomic.Int32
	maxBlock    time.Duration
}

// newBlocker returns a blocker; the test must defer its free, so that the
// handler is released before the cleanups unsubscribe and close (deferred
// calls run before t.Cleanup functions, which run last registered first).
func (e *env) newBlocker() *blocker {
	return &blocker{started: make(chan struct{}), release: make(chan struct{}), maxBlock: 3 * e.f.Timeout}
}

func (b *blocker) handle(context.Context, *broker.Message) error {
	b.startOnce.Do(func() { close(b.started) })
	select {
	case <-b.release:
	case <-time.After(b.maxBlock):
	}
	b.finished.Add(1)
	return nil
}

func (b *blocker) free() { b.releaseOnce.Do(func() { close(b.release) }) }

// testUnsubscribeWaitsForHandler: Unsubscribe does not return while a
// handler is in flight; it lets the handler finish, without cancelling its
// context, and then returns nil.
func testUnsubscribeWaitsForHandler(e *env) {
	pub, c := e.client(), e.client()
	topic := e.topic("unsubwait")
	b, r := e.newBlocker(), newRecorder()
	defer b.free()
	sub := e.subscribe(c, topic, r.handler(0, b.handle))
	e.publish(pub, topic, &broker.Message{Body: []byte("slow")})
	e.waitClosed(b.started, e.f.Timeout, "the handler to start")

	done := make(chan struct{})
	var err error
	var finishedAtReturn int32
	go func() {
		defer close(done)
		ctx, cancel := e.ctx()
		defer cancel()
		err = sub.Unsubscribe(ctx)
		finishedAtReturn = b.finished.Load()
	}()
	if !e.stillOpen(done) {
		e.Fatalf("Unsubscribe returned (%v) while a handler was in flight", err)
	}
	b.free()
	e.waitClosed(done, e.f.Timeout, "Unsubscribe to return once the handler finished")
	if err != nil {
		e.Errorf("Unsubscribe: %v", err)
	}
	if finishedAtReturn != 1 {
		e.Errorf("Unsubscribe returned before the handler in flight finished")
	}
	if d := r.deliveries(); len(d) != 1 || d[0].ctxErr != nil {
		e.Errorf("want one delivery whose handler context was not cancelled while Unsubscribe drained; got %d, context error %v", len(d), ctxErrOf(d))
	}
}

func ctxErrOf(ds []delivery) error {
	if len(ds) == 0 {
		return nil
	}
	return ds[0].ctxErr
}

// testUnsubscribeIdempotent: Unsubscribe returns nil when called again, and
// on a subscription whose client is closed returns nil or ErrClosed.
func testUnsubscribeIdempotent(e *env) {
	c := e.client()
	topic := e.topic("unsubtwice")
	nop := func(context.Context, *broker.Message) error { return nil }
	sub := e.subscribe(c, topic, nop)
	other := e.subscribe(c, topic, nop, broker.Queue(e.queue("workers")))
	ctx, cancel := e.ctx()
	defer cancel()
	for i := range 3 {
		if err := sub.Unsubscribe(ctx); err != nil {
			e.Errorf("Unsubscribe call %d: %v", i+1, err)
		}
	}
	if err := c.Close(ctx); err != nil {
		e.Fatalf("Close: %v", err)
	}
	if err := other.Unsubscribe(ctx); err != nil && !errors.Is(err, broker.ErrClosed) {
		e.Errorf("Unsubscribe after Close: %v, want nil or ErrClosed", err)
	}
}

// testCloseDrainsHandlers: Close lets a handler in flight finish, without
// cancelling its context, acknowledges its message, and only then returns
// nil; the message is not delivered again, even after AckWait.
func testCloseDrainsHandlers(e *env) {
	pub, c := e.client(), e.client()
	topic, q := e.topic("closedrain"), e.queue("workers")
	b, r := e.newBlocker(), newRecorder()
	defer b.free()
	e.subscribe(c, topic, r.handler(0, b.handle), broker.Queue(q), broker.AckWait(e.f.AckWait))
	m := &broker.Message{Body: []byte("in flight at close")}
	e.publish(pub, topic, m)
	e.waitClosed(b.started, e.f.Timeout, "the handler to start")

	done := make(chan struct{})
	var err error
	var finishedAtReturn int32
	go func() {
		defer close(done)
		ctx, cancel := e.ctx()
		defer cancel()
		err = c.Close(ctx)
		finishedAtReturn = b.finished.Load()
	}()
	if !e.stillOpen(done) {
		e.Fatalf("Close returned (%v) while a handler was in flight", err)
	}
	b.free()
	e.waitClosed(done, e.f.Timeout, "Close to return once the handler finished")
	if err != nil {
		e.Errorf("Close: %v", err)
	}
	if finishedAtReturn != 1 {
		e.Errorf("Close returned before the handler in flight finished")
	}
	if ds := r.deliveries(); len(ds) != 1 || ds[0].ctxErr != nil {
		e.Errorf("want one delivery whose handler context was not cancelled while Close drained; got %d, context error %v", len(ds), ctxErrOf(ds))
	}

	// A new member of the group gets new messages but not the drained one.
	r2 := newRecorder()
	e.subscribe(e.client(), topic, r2.handler(1, nil), broker.Queue(q), broker.AckWait(e.f.AckWait))
	marker := &broker.Message{Body: []byte("marker")}
	e.publish(pub, topic, marker)
	e.waitIDs(r2, []string{marker.ID}, "a new message to the new member")
	<-time.After(e.f.AckWait + e.f.SettleTime)
	if n := len(r2.of(m.ID)); n > 0 {
		e.Errorf("the message acknowledged during Close was delivered again %d times", n)
	}
}

// testCloseBoundedByContext: Close returns once its context ends even when
// a handler is stuck (ignores its context), with an error wrapping
// context.DeadlineExceeded; the client is closed all the same.
func testCloseBoundedByContext(e *env) {
	pub, c := e.client(), e.client()
	topic := e.topic("closestuck")
	b := e.newBlocker()
	defer b.free()
	e.subscribe(c, topic, b.handle)
	e.publish(pub, topic, &broker.Message{Body: []byte("stuck")})
	e.waitClosed(b.started, e.f.Timeout, "the handler to start")

	bound := e.f.SettleTime
	grace := max(time.Second, e.f.SettleTime)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.Close(ctx) }()
	select {
	case err := <-done:
		took := time.Since(start)
		if took > bound+grace {
			e.Errorf("Close took %v with a context of %v", took, bound)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			e.Errorf("Close with a stuck handler returned %v, want an error wrapping context.DeadlineExceeded", err)
		}
	case <-time.After(bound + grace):
		e.Fatalf("Close with a stuck handler and a context of %v has not returned after %v", bound, bound+grace)
	}
	pctx, pcancel := e.ctx()
	defer pcancel()
	if err := c.Publish(pctx, topic, &broker.Message{}); !errors.Is(err, broker.ErrClosed) {
		e.Errorf("Publish after a Close that ran out of time: %v, want ErrClosed", err)
	}
}

// testAbandonedDeliveryRedelivered (Persistent): a delivery whose handler is
// still stuck when Close's context ends is not lost: another member of the
// queue group gets it, with the same ID and a higher Attempt.
func testAbandonedDeliveryRedelivered(e *env) {
	if !e.f.Persistent {
		e.Skip("Features.Persistent is false: a queue group keeps nothing for later members")
	}
	pub, c := e.client(), e.client()
	topic, q := e.topic("abandoned"), e.queue("workers")
	b, r := e.newBlocker(), newRecorder()
	defer b.free()
	e.subscribe(c, topic, r.handler(0, b.handle), broker.Queue(q), broker.AckWait(e.f.AckWait))
	m := &broker.Message{Body: []byte("abandoned")}
	e.publish(pub, topic, m)
	e.waitClosed(b.started, e.f.Timeout, "the handler to start")
	ctx, cancel := context.WithTimeout(context.Background(), e.f.SettleTime)
	defer cancel()
	err := c.Close(ctx)
	e.Logf("Close with a stuck handler: %v", err)

	e.subscribe(e.client(), topic, r.handler(1, nil), broker.Queue(q), broker.AckWait(e.f.AckWait))
	e.waitFor(e.f.AckWait+e.f.Timeout, func() bool { return r.perMember()[1] > 0 }, func() string {
		return "the abandoned delivery to reach another member of the group"
	})
	for _, d := range r.deliveries() {
		if d.member == 1 && (d.msg.ID != m.ID || d.msg.Attempt < 2 || string(d.msg.Body) != "abandoned") {
			e.Errorf("the other member got ID %q Attempt %d body %q; want ID %q, Attempt >= 2, body \"abandoned\"",
				d.msg.ID, d.msg.Attempt, d.msg.Body, m.ID)
		}
	}
}

// testCloseIdempotent: Close returns nil when called again.
func testCloseIdempotent(e *env) {
	c := e.client()
	e.subscribe(c, e.topic("closetwice"), func(context.Context, *broker.Message) error { return nil })
	ctx, cancel := e.ctx()
	defer cancel()
	for i := range 3 {
		if err := c.Close(ctx); err != nil {
			e.Errorf("Close call %d: %v", i+1, err)
		}
	}
}

// testPublishAfterClose: Publish and PublishBatch on a closed client return
// errors wrapping ErrClosed.
func testPublishAfterClose(e *env) {
	c := e.client()
	ctx, cancel := e.ctx()
	defer cancel()
	if err := c.Close(ctx); err != nil {
		e.Fatalf("Close: %v", err)
	}
	topic := e.topic("closedpub")
	if err := c.Publish(ctx, topic, &broker.Message{Body: []byte("x")}); !errors.Is(err, broker.ErrClosed) {
		e.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	err := broker.PublishBatch(ctx, c, topic, []*broker.Message{{Body: []byte("a")}, {Body: []byte("b")}})
	if !errors.Is(err, broker.ErrClosed) {
		e.Errorf("PublishBatch after Close: %v, want ErrClosed", err)
	}
}

// testSubscribeAfterClose: Subscribe on a closed client returns an error
// wrapping ErrClosed.
func testSubscribeAfterClose(e *env) {
	c := e.client()
	ctx, cancel := e.ctx()
	defer cancel()
	if err := c.Close(ctx); err != nil {
		e.Fatalf("Close: %v", err)
	}
	sub, err := c.Subscribe(ctx, e.topic("closedsub"), func(context.Context, *broker.Message) error { return nil })
	if !errors.Is(err, broker.ErrClosed) {
		e.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	if sub != nil {
		e.Errorf("Subscribe after Close returned a Subscription")
	}
}

// testPublishCanceledContext: Publish with a cancelled context returns an
// error wrapping context.Canceled.
func testPublishCanceledContext(e *env) {
	c := e.client()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Publish(ctx, e.topic("canceled"), &broker.Message{Body: []byte("x")}); !errors.Is(err, context.Canceled) {
		e.Errorf("Publish with a cancelled context: %v, want an error wrapping context.Canceled", err)
	}
}

// testSubscribeCanceledContext: Subscribe with a cancelled context returns
// an error wrapping context.Canceled: its context bounds the set-up.
func testSubscribeCanceledContext(e *env) {
	c := e.client()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sub, err := c.Subscribe(ctx, e.topic("canceled"), func(context.Context, *broker.Message) error { return nil })
	if !errors.Is(err, context.Canceled) {
		e.Errorf("Subscribe with a cancelled context: %v, want an error wrapping context.Canceled", err)
	}
	if sub != nil {
		uctx, ucancel := e.ctx()
		defer ucancel()
		_ = sub.Unsubscribe(uctx)
	}
}
