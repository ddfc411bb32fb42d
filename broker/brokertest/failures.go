package brokertest

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"strings"
	"time"

	"github.com/herald-dev/herald/broker"
)

// testNackRedelivers: a handler error redelivers the message with Attempt
// one higher, the same ID, headers, body and PublishedAt, no sooner than the
// backoff's Initial delay; once acknowledged it is not delivered again.
func testNackRedelivers(e *env) {
	pub, sub := e.client(), e.client()
	topic := e.topic("nack")
	const initial = 100 * time.Millisecond
	r := newRecorder()
	e.subscribe(sub, topic, r.handler(0, func(_ context.Context, m *broker.Message) error {
		if m.Attempt == 1 {
			return errors.New("try again")
		}
		return nil
	}), broker.RetryBackoff(broker.Backoff{Initial: initial, Max: initial}))

	m := &broker.Message{Header: broker.Header{"k": "v"}, Body: []byte{0, 1, 2, 0xff}}
	e.publish(pub, topic, m)
	ds := e.waitN(r, 2, "the redelivery after a nack")
	first, second := ds[0], ds[1]
	if first.msg.Attempt != 1 || second.msg.Attempt != 2 {
		e.Errorf("attempts %d then %d, want 1 then 2", first.msg.Attempt, second.msg.Attempt)
	}
	if second.msg.ID != m.ID || second.msg.Topic != topic || !bytes.Equal(second.msg.Body, m.Body) || !maps.Equal(second.msg.Header, m.Header) {
		e.Errorf("redelivered ID %q topic %q header %v body %v; want ID %q topic %q header %v body %v",
			second.msg.ID, second.msg.Topic, second.msg.Header, second.msg.Body, m.ID, topic, m.Header, m.Body)
	}
	if d := second.msg.PublishedAt.Sub(first.msg.PublishedAt).Abs(); d > time.Millisecond {
		e.Errorf("PublishedAt changed by %v on redelivery (%v, then %v): it is when the message was published", d, first.msg.PublishedAt, second.msg.PublishedAt)
	}
	// Initial less 10%: engines keep time on their own clock and granularity.
	if gap := second.start.Sub(first.end); gap < initial-initial/10 {
		e.Errorf("redelivered %v after the nack, before the backoff's Initial %v", gap, initial)
	}
	e.settle()
	if n := r.len(); n != 2 {
		e.Errorf("%d deliveries, want 2: the message came back after it was acknowledged", n)
	}
}

// testMaxAttemptsDeadLetter: a message that fails MaxAttempts times goes to
// the default dead-letter topic, once, with its ID, headers and body and the
// dead-letter headers; it is then not delivered again.
func testMaxAttemptsDeadLetter(e *env) {
	pub, sub, dlc := e.client(), e.client(), e.client()
	topic, q := e.topic("maxattempts"), e.queue("workers")
	dlTopic := broker.DefaultDeadLetterTopic(topic)
	dl := newRecorder()
	e.subscribe(dlc, dlTopic, dl.handler(0, nil))
	reason := "boom-" + e.id
	r := newRecorder()
	e.subscribe(sub, topic, r.handler(0, func(context.Context, *broker.Message) error {
		return errors.New(reason)
	}), broker.Queue(q), broker.MaxAttempts(3))

	m := &broker.Message{Header: broker.Header{"k": "v", "trace": "t-1"}, Body: []byte("poison\x00\xff")}
	before := time.Now()
	e.publish(pub, topic, m)
	d := e.waitN(dl, 1, "the dead letter")[0].msg
	after := time.Now()
	e.settle()
	e.checkAttempts(r, m.ID, 3)
	if n := dl.len(); n != 1 {
		e.Errorf("%d dead letters, want 1", n)
	}
	e.checkDeadLetter(d, m, dlTopic, topic, q, "3", []string{reason}, before, after)
}

// testPermanentDeadLetter: an error wrapped by broker.Permanent sends the
// message to the dead-letter topic set by DeadLetterTo at once, after one
// attempt, from a broadcast subscriber.
func testPermanentDeadLetter(e *env) {
	pub, sub, dlc := e.client(), e.client(), e.client()
	topic, dlTopic := e.topic("permanent"), e.topic("custom-dead-letters")
	dl, defaultDL := newRecorder(), newRecorder()
	e.subscribe(dlc, dlTopic, dl.handler(0, nil))
	e.subscribe(dlc, broker.DefaultDeadLetterTopic(topic), defaultDL.handler(0, nil))
	reason := "malformed-" + e.id
	r := newRecorder()
	e.subscribe(sub, topic, r.handler(0, func(context.Context, *broker.Message) error {
		return broker.Permanent(errors.New(reason))
	}), broker.DeadLetterTo(dlTopic), broker.MaxAttempts(5))

	m := &broker.Message{Header: broker.Header{"k": "v"}, Body: []byte("bad input")}
	before := time.Now()
	e.publish(pub, topic, m)
	d := e.waitN(dl, 1, "the dead letter")[0].msg
	after := time.Now()
	e.settle()
	e.checkAttempts(r, m.ID, 1)
	if n := dl.len(); n != 1 {
		e.Errorf("%d dead letters, want 1", n)
	}
	if n := defaultDL.len(); n != 0 {
		e.Errorf("%d dead letters went to the default topic although DeadLetterTo was set", n)
	}
	e.checkDeadLetter(d, m, dlTopic, topic, "", "1", []string{reason}, before, after)
}

// testPanicRedelivers: a handler that panics is recovered and the message
// redelivered; the next attempt acknowledges it.
func testPanicRedelivers(e *env) {
	pub, sub := e.client(), e.client()
	topic := e.topic("panic")
	r := newRecorder()
	e.subscribe(sub, topic, r.handler(0, func(_ context.Context, m *broker.Message) error {
		if m.Attempt == 1 {
			panic("handler bug")
		}
		return nil
	}))
	m := &broker.Message{Body: []byte("x")}
	e.publish(pub, topic, m)
	e.waitN(r, 2, "the redelivery after a panic")
	e.settle()
	e.checkAttempts(r, m.ID, 2)
}

// testPanicDeadLetter: a handler that always panics sends the message to
// the dead-letter topic after MaxAttempts, with the panic in the reason.
func testPanicDeadLetter(e *env) {
	pub, sub, dlc := e.client(), e.client(), e.client()
	topic, q := e.topic("panicdl"), e.queue("workers")
	dlTopic := broker.DefaultDeadLetterTopic(topic)
	dl := newRecorder()
	e.subscribe(dlc, dlTopic, dl.handler(0, nil))
	value := "kaboom-" + e.id
	r := newRecorder()
	e.subscribe(sub, topic, r.handler(0, func(context.Context, *broker.Message) error {
		panic(value)
	}), broker.Queue(q), broker.MaxAttempts(2))

	m := &broker.Message{Header: broker.Header{"k": "v"}, Body: []byte("x")}
	before := time.Now()
	e.publish(pub, topic, m)
	d := e.waitN(dl, 1, "the dead letter")[0].msg
	after := time.Now()
	e.settle()
	e.checkAttempts(r, m.ID, 2)
	e.checkDeadLetter(d, m, dlTopic, topic, q, "2", []string{broker.ErrPanic.Error(), value}, before, after)
}

// testRetryUnderLoad: 500 messages all nacked once, through a group of two
// members running 4 handlers each, are each acknowledged on a later
// attempt. Deliveries beyond the two each needs are duplicates, allowed
// after a nack, and logged.
func testRetryUnderLoad(e *env) {
	pub := e.client()
	topic, q := e.topic("retryload"), e.queue("workers")
	r := newRecorder()
	for i := range 2 {
		e.subscribe(e.client(), topic, r.handler(i, func(_ context.Context, m *broker.Message) error {
			if m.Attempt == 1 {
				return errors.New("first attempt fails")
			}
			return nil
		}), broker.Queue(q), broker.Concurrency(4))
	}
	const n = 500
	ids := e.publishN(pub, topic, n, "retry ")
	acked := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		seen := map[string]bool{}
		for _, d := range r.ds {
			if d.msg.Attempt >= 2 {
				seen[d.msg.ID] = true
			}
		}
		return len(seen)
	}
	e.waitCount(acked, n, "messages acknowledged on a retry")
	e.settle()
	var dups int
	for _, id := range ids {
		ds := r.of(id)
		if len(ds) < 2 || ds[0].msg.Attempt != 1 {
			e.Errorf("message %s: %d deliveries, first with Attempt %d; want Attempt 1, then a retry", id, len(ds), attemptOf(ds))
			continue
		}
		dups += len(ds) - 2
	}
	if total := r.len(); total > 2*n || dups > 0 {
		e.Logf("duplicates after a nack (allowed): %d deliveries for %d messages, %d beyond the 2 each needs", total, n, dups)
	}
	e.Logf("%d messages, each nacked once and acknowledged on a retry; deliveries: %d", n, r.len())
}

func attemptOf(ds []delivery) int {
	if len(ds) == 0 {
		return 0
	}
	return ds[0].msg.Attempt
}

// checkAttempts checks that id was delivered exactly n times, with Attempt
// 1, 2, … n in that order.
func (e *env) checkAttempts(r *recorder, id string, n int) {
	e.Helper()
	ds := r.of(id)
	got := make([]int, len(ds))
	for i, d := range ds {
		got[i] = d.msg.Attempt
	}
	ok := len(got) == n
	for i := 0; ok && i < n; i++ {
		ok = got[i] == i+1
	}
	if !ok {
		e.Errorf("message %s delivered with attempts %v, want 1 to %d once each", id, got, n)
	}
}

// checkDeadLetter checks the dead letter d of the original message orig.
func (e *env) checkDeadLetter(d, orig *broker.Message, dlTopic, topic, queue, attempts string, reason []string, before, after time.Time) {
	e.Helper()
	if d.ID != orig.ID {
		e.Errorf("dead letter has ID %q, want the original's %q", d.ID, orig.ID)
	}
	if d.Topic != dlTopic || d.Attempt != 1 {
		e.Errorf("dead letter delivered with Topic %q Attempt %d, want %q and 1", d.Topic, d.Attempt, dlTopic)
	}
	if !bytes.Equal(d.Body, orig.Body) {
		e.Errorf("dead letter body %q, want the original's %q", d.Body, orig.Body)
	}
	for k, v := range orig.Header {
		if got, ok := d.Header[k]; !ok || got != v {
			e.Errorf("dead letter header %q = %q (present %v), want the original's %q", k, got, ok, v)
		}
	}
	dlHeaders := map[string]bool{
		broker.HeaderDeadLetterReason: true, broker.HeaderDeadLetterAttempts: true, broker.HeaderDeadLetterTopic: true,
		broker.HeaderDeadLetterQueue: true, broker.HeaderDeadLetterTime: true,
	}
	for k, v := range d.Header {
		if _, ok := orig.Header[k]; !ok && !dlHeaders[k] {
			e.Errorf("dead letter carries header %q=%q, neither the original's nor a dead-letter header", k, v)
		}
	}
	why := d.Header.Get(broker.HeaderDeadLetterReason)
	for _, s := range reason {
		if !strings.Contains(why, s) {
			e.Errorf("dead-letter reason %q does not contain %q", why, s)
		}
	}
	if got := d.Header.Get(broker.HeaderDeadLetterAttempts); got != attempts {
		e.Errorf("dead-letter attempts %q, want %q", got, attempts)
	}
	if got := d.Header.Get(broker.HeaderDeadLetterTopic); got != topic {
		e.Errorf("dead-letter topic header %q, want %q", got, topic)
	}
	if got := d.Header.Get(broker.HeaderDeadLetterQueue); got != queue {
		e.Errorf("dead-letter queue header %q, want %q", got, queue)
	}
	at, err := time.Parse(time.RFC3339Nano, d.Header.Get(broker.HeaderDeadLetterTime))
	skew := e.f.ClockSkew
	switch {
	case err != nil:
		e.Errorf("dead-letter time header: %v", err)
	case at.Before(before.Add(-skew)) || at.After(after.Add(skew)):
		e.Errorf("dead-letter time %v is not within %v of [%v, %v]", at, skew, before, after)
	}
}
