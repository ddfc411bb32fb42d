package gomicro_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	herald "github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/gomicro"
	mb "go-micro.dev/v5/broker"
)

// behaviours is Go Micro's broker behaviours, each proven on every backend.
var behaviours = []struct {
	name string
	run  func(t *testing.T, open func(t *testing.T) herald.Broker)
}{
	{"PublishSubscribe", testPublishSubscribe},
	{"HeadersAndBodyKept", testHeadersAndBodyKept},
	{"QueueOneMemberGetsEach", testQueue},
	{"QueueDottedName", testQueueDottedName},
	{"BroadcastAllGetEach", testBroadcast},
	{"UnsubscribeStopsDelivery", testUnsubscribe},
	{"DisconnectStopsAndRefuses", testDisconnect},
	{"AckWithDisableAutoAck", testAck},
	{"NoAckRedelivered", testNoAck},
	{"LateAckWithinGrace", testLateAck},
	{"ErrorRedeliveredThenDeadLetter", testErrorThenDLQ},
	{"PermanentDeadLettersAtOnce", testPermanent},
	{"PanicRedelivered", testPanic},
	{"SubscribeContextCarriesOptions", testSubscribeContext},
	{"PublishContextHonoured", testPublishContext},
	{"PublishErrorsSurfaced", testPublishErrors},
	{"NotConnected", testNotConnected},
}

func TestBehaviours(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			open := be.open(t)
			for _, c := range behaviours {
				t.Run(c.name, func(t *testing.T) { c.run(t, open) })
			}
		})
	}
}

func testPublishSubscribe(t *testing.T, open func(t *testing.T) herald.Broker) {
	b := connected(t, open(t))
	topic := topicFor(t)
	var r recorder
	sub := subscribe(t, b, topic, r.handler())
	if sub.Topic() != topic {
		t.Errorf("Subscriber.Topic() = %q, want %q", sub.Topic(), topic)
	}
	if !sub.Options().AutoAck {
		t.Errorf("Subscriber.Options().AutoAck = false, want go-micro's default true")
	}
	for i := range 10 {
		publish(t, b, topic, fmt.Sprint("m", i), map[string]string{"n": fmt.Sprint(i)})
	}
	waitFor(t, 10*time.Second, "10 deliveries", func() bool { return r.len() >= 10 })
	for i, d := range r.all() {
		if d.topic != topic || string(d.body) != fmt.Sprint("m", i) || d.header["n"] != fmt.Sprint(i) || d.attempt != 1 || d.id == "" {
			t.Errorf("delivery %d = topic %q body %q header %v attempt %d id %q", i, d.topic, d.body, d.header, d.attempt, d.id)
		}
	}
	if b.String() != "herald" {
		t.Errorf("String() = %q", b.String())
	}
}

func testHeadersAndBodyKept(t *testing.T, open func(t *testing.T) herald.Broker) {
	b := connected(t, open(t))
	topic := topicFor(t)
	var r recorder
	subscribe(t, b, topic, r.handler())
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	header := map[string]string{
		"Content-Type":   "application/protobuf",
		"Micro-Topic":    topic,
		"Micro-ID":       "5f1c8a36-2d1e-4b55-9a0e-6c1f5e3b7a21",
		"x-lower":        "Value With  Spaces",
		"X-Unicode":      "héllo, wörld ✓",
		"X-Padded":       "  leading and trailing  ",
		"X-Lines":        "one\r\ntwo\nthree",
		"Nats-Msg-Id":    "not-for-the-server",
		"weird name/é":   "v",
		"X-Empty-Value":  "",
		"X-Colon:In:Val": "a:b:c",
	}
	bodies := [][]byte{nil, {}, {0}, binary, big}
	for _, body := range bodies {
		h := maps.Clone(header)
		if err := b.Publish(topic, &mb.Message{Header: h, Body: body}); err != nil {
			t.Fatalf("Publish %d bytes: %v", len(body), err)
		}
		if !maps.Equal(h, header) {
			t.Fatalf("Publish changed the caller's header: %v", h)
		}
	}
	waitFor(t, 20*time.Second, "every body", func() bool { return r.len() >= len(bodies) })
	for i, d := range r.all() {
		if !bytes.Equal(d.body, bodies[i]) {
			t.Errorf("body %d: got %d bytes, want %d, byte for byte", i, len(d.body), len(bodies[i]))
		}
		if !maps.Equal(d.header, header) {
			t.Errorf("header %d:\n got %q\nwant %q", i, d.header, header)
		}
	}
}

func testQueue(t *testing.T, open func(t *testing.T) herald.Broker) {
	pub := connected(t, open(t))
	topic := topicFor(t)
	const members, n = 3, 60
	recs := make([]*recorder, members)
	for i := range recs {
		recs[i] = &recorder{}
		// Each member on its own client, as separate processes would be.
		subscribe(t, connected(t, open(t)), topic, recs[i].handler(), mb.Queue("email"))
	}
	for i := range n {
		publish(t, pub, topic, fmt.Sprint("m", i), nil)
	}
	total := func() int {
		s := 0
		for _, r := range recs {
			s += r.len()
		}
		return s
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("%d deliveries to the group", n), func() bool { return total() >= n })
	seen := map[string]int{}
	for _, r := range recs {
		for _, d := range r.all() {
			seen[string(d.body)]++
		}
	}
	for i := range n {
		if c := seen[fmt.Sprint("m", i)]; c != 1 {
			t.Errorf("m%d handled %d times by the group, want exactly once", i, c)
		}
	}
	if total() != n {
		t.Errorf("group handled %d messages, want %d", total(), n)
	}
	for i, r := range recs {
		t.Logf("member %d handled %d", i, r.len())
	}
}

func testQueueDottedName(t *testing.T, open func(t *testing.T) herald.Broker) {
	b := connected(t, open(t))
	topic := topicFor(t)
	var r1, r2 recorder
	subscribe(t, b, topic, r1.handler(), mb.Queue("go.micro.srv.email"))
	subscribe(t, b, topic, r2.handler(), mb.Queue("go.micro.srv.email"))
	for i := range 20 {
		publish(t, b, topic, fmt.Sprint("m", i), nil)
	}
	waitFor(t, 10*time.Second, "20 deliveries", func() bool { return r1.len()+r2.len() >= 20 })
	for i := range 20 {
		if c := r1.count(fmt.Sprint("m", i)) + r2.count(fmt.Sprint("m", i)); c != 1 {
			t.Errorf("m%d handled %d times by the dotted group, want once", i, c)
		}
	}
	if q := gomicro.QueueName("go.micro.srv.email"); herald.ValidateQueue(q) != nil || q == gomicro.QueueName("go_micro_srv_email") {
		t.Errorf("QueueName(go.micro.srv.email) = %q: invalid or colliding", q)
	}
}

func testBroadcast(t *testing.T, open func(t *testing.T) herald.Broker) {
	pub := connected(t, open(t))
	topic := topicFor(t)
	recs := make([]*recorder, 3)
	for i := range recs {
		recs[i] = &recorder{}
		subscribe(t, connected(t, open(t)), topic, recs[i].handler())
	}
	for i := range 20 {
		publish(t, pub, topic, fmt.Sprint("m", i), nil)
	}
	for i, r := range recs {
		waitFor(t, 10*time.Second, fmt.Sprintf("subscriber %d to get 20", i), func() bool { return r.len() >= 20 })
		for j := range 20 {
			if c := r.count(fmt.Sprint("m", j)); c != 1 {
				t.Errorf("subscriber %d got m%d %d times, want once", i, j, c)
			}
		}
	}
}

func testUnsubscribe(t *testing.T, open func(t *testing.T) herald.Broker) {
	b := connected(t, open(t))
	topic := topicFor(t)
	var gone, stays recorder
	sub := subscribe(t, b, topic, gone.handler())
	subscribe(t, b, topic, stays.handler())
	publish(t, b, topic, "before", nil)
	waitFor(t, 10*time.Second, "both to get the first", func() bool { return gone.len() == 1 && stays.len() == 1 })
	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("second Unsubscribe: %v", err)
	}
	for i := range 10 {
		publish(t, b, topic, fmt.Sprint("after", i), nil)
	}
	waitFor(t, 10*time.Second, "the remaining subscriber to get 11", func() bool { return stays.len() == 11 })
	if n := gone.len(); n != 1 {
		t.Errorf("unsubscribed handler got %d messages, want only the one before", n)
	}
}

func testDisconnect(t *testing.T, open func(t *testing.T) herald.Broker) {
	hb := open(t)
	b := connected(t, hb)
	other := connected(t, open(t))
	topic := topicFor(t)
	var r, witness recorder
	subscribe(t, b, topic, r.handler())
	subscribe(t, other, topic, witness.handler())
	publish(t, other, topic, "before", nil)
	waitFor(t, 10*time.Second, "the first message", func() bool { return r.len() == 1 && witness.len() == 1 })

	if err := b.Disconnect(); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if err := b.Disconnect(); err != nil {
		t.Fatalf("second Disconnect: %v", err)
	}
	publish(t, other, topic, "after", nil)
	waitFor(t, 10*time.Second, "the witness to get the second", func() bool { return witness.len() == 2 })
	if n := r.len(); n != 1 {
		t.Errorf("disconnected broker's handler got %d messages, want 1", n)
	}
	err := b.Publish(topic, &mb.Message{Body: []byte("x")})
	if !errors.Is(err, gomicro.ErrNotConnected) {
		t.Errorf("Publish after Disconnect = %v, want ErrNotConnected", err)
	}
	if _, err := b.Subscribe(topic, r.handler()); !errors.Is(err, gomicro.ErrNotConnected) {
		t.Errorf("Subscribe after Disconnect = %v, want ErrNotConnected", err)
	}
	// The caller's Herald broker stays open, and the plugin connects again.
	if err := hb.Publish(context.Background(), topic, &herald.Message{Body: []byte("direct")}); err != nil {
		t.Errorf("the Herald broker given to New was closed by Disconnect: %v", err)
	}
	if err := b.Connect(); err != nil {
		t.Fatalf("Connect again: %v", err)
	}
	subscribe(t, b, topic, r.handler())
	publish(t, b, topic, "again", nil)
	waitFor(t, 10*time.Second, "delivery after reconnecting", func() bool { return r.count("again") == 1 })
}

// outcome subscribes h to a new topic with opts, one attempt per message
// and no backoff, publishes "m" and then "marker", which fails, and returns
// the bodies dead-lettered once the marker is. Handlers of a subscription
// run one at a time, so by then the outcome of "m" is settled: it is
// dead-lettered too unless it was acknowledged.
func outcome(t *testing.T, b mb.Broker, h mb.Handler, opts ...mb.SubscribeOption) []string {
	t.Helper()
	topic := topicFor(t)
	var dlq recorder
	subscribe(t, b, herald.DefaultDeadLetterTopic(topic), dlq.handler())
	opts = append(opts, gomicro.SubscribeWith(herald.MaxAttempts(1), herald.RetryBackoff(herald.Backoff{})))
	subscribe(t, b, topic, func(e mb.Event) error {
		if string(e.Message().Body) == "marker" {
			return errors.New("the marker fails")
		}
		return h(e)
	}, opts...)
	publish(t, b, topic, "m", nil)
	publish(t, b, topic, "marker", nil)
	waitFor(t, 10*time.Second, "the marker's dead letter", func() bool { return dlq.count("marker") == 1 })
	var dead []string
	for _, d := range dlq.all() {
		dead = append(dead, string(d.body))
	}
	return dead
}

func testAck(t *testing.T, open func(t *testing.T) herald.Broker) {
	b := connected(t, open(t))
	var calls atomic.Int32
	var ackErr atomic.Value
	dead := outcome(t, b, func(e mb.Event) error {
		calls.Add(1)
		if err := e.Ack(); err != nil {
			ackErr.Store(err)
		}
		return nil
	}, mb.DisableAutoAck())
	if v := ackErr.Load(); v != nil {
		t.Errorf("Ack: %v", v)
	}
	if slices.Contains(dead, "m") || calls.Load() != 1 {
		t.Errorf("acknowledged message not acknowledged: dead letters %q, %d calls", dead, calls.Load())
	}

	// The control: without Ack the same message is not acknowledged.
	if dead := outcome(t, b, func(mb.Event) error { return nil }, mb.DisableAutoAck()); !slices.Contains(dead, "m") {
		t.Errorf("message handled without Ack was acknowledged: dead letters %q", dead)
	}

	// Ack is final: a handler that acknowledged and then failed keeps the
	// message acknowledged, with or without auto-ack.
	for _, opts := range [][]mb.SubscribeOption{{mb.DisableAutoAck()}, nil} {
		dead := outcome(t, b, func(e mb.Event) error {
			_ = e.Ack()
			return errors.New("failed after Ack")
		}, opts...)
		if slices.Contains(dead, "m") {
			t.Errorf("acknowledged-then-failed message not acknowledged (auto-ack %v): dead letters %q", opts == nil, dead)
		}
	}
}

func testNoAck(t *testing.T, open func(t *testing.T) herald.Broker) {
	b := connected(t, open(t))
	topic := topicFor(t)
	var r recorder
	h := func(e mb.Event) error {
		r.add(e)
		if info, _ := gomicro.Delivery(e); info.Attempt == 1 && string(e.Message().Body) == "m" {
			return nil // returns without Ack: must come back
		}
		return e.Ack()
	}
	subscribe(t, b, topic, h, mb.DisableAutoAck(), fast(5))
	publish(t, b, topic, "m", nil)
	waitFor(t, 10*time.Second, "the redelivery", func() bool { return r.len() >= 2 })
	got := r.all()
	if got[0].attempt != 1 || got[1].attempt != 2 || got[0].id != got[1].id {
		t.Errorf("deliveries: attempt %d id %s, then attempt %d id %s; want 1 then 2, same ID", got[0].attempt, got[0].id, got[1].attempt, got[1].id)
	}
	if err := got[0].ev.Error(); !errors.Is(err, gomicro.ErrNotAcked) {
		t.Errorf("Event.Error() of the unacknowledged delivery = %v, want ErrNotAcked", err)
	}
	if err := got[0].ev.Ack(); !errors.Is(err, gomicro.ErrSettled) {
		t.Errorf("late Ack of a settled delivery = %v, want ErrSettled", err)
	}
	// The second delivery was acknowledged: a message published after it is
	// the next and last thing the handler sees.
	publish(t, b, topic, "next", nil)
	waitFor(t, 10*time.Second, "the next message", func() bool { return r.count("next") >= 1 })
	if n := r.count("m"); n != 2 || r.count("next") != 1 {
		t.Errorf("message handled %d times, want 2 (not acknowledged, then acknowledged); the next one %d times", n, r.count("next"))
	}
	if err := got[1].ev.Error(); err != nil {
		t.Errorf("Event.Error() of the acknowledged delivery = %v", err)
	}
}

func testLateAck(t *testing.T, open func(t *testing.T) herald.Broker) {
	b := connected(t, open(t), gomicro.WithAckGrace(5*time.Second))
	var calls atomic.Int32
	acked := make(chan error, 1)
	dead := outcome(t, b, func(e mb.Event) error {
		calls.Add(1)
		go func() { acked <- e.Ack() }() // acknowledged after the handler returned
		return nil
	}, mb.DisableAutoAck())
	if err := <-acked; err != nil {
		t.Errorf("Ack within the grace: %v", err)
	}
	if slices.Contains(dead, "m") || calls.Load() != 1 {
		t.Errorf("message acknowledged within the grace not acknowledged: dead letters %q, %d calls", dead, calls.Load())
	}
}

func testErrorThenDLQ(t *testing.T, open func(t *testing.T) herald.Broker) {
	var errEvents atomic.Int32
	var errSeen sync.Map
	hb := open(t)
	b := gomicro.New(hb, gomicro.WithDrainTimeout(10*time.Second))
	if err := b.Init(mb.ErrorHandler(func(e mb.Event) error {
		errEvents.Add(1)
		errSeen.Store(e.Error().Error(), true)
		return nil
	})); err != nil {
		t.Fatalf("Init: %v", err)
	}
	if err := b.Connect(); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = b.Disconnect() })
	topic := topicFor(t)
	var r, dlq recorder
	subscribe(t, b, topic, func(e mb.Event) error {
		r.add(e)
		return errors.New("smtp: 451 try later")
	}, fast(3))
	subscribe(t, b, herald.DefaultDeadLetterTopic(topic), dlq.handler())
	publish(t, b, topic, "poison", map[string]string{"k": "v"})
	waitFor(t, 10*time.Second, "the dead letter", func() bool { return dlq.len() == 1 })
	got := r.all()
	if len(got) != 3 {
		t.Fatalf("handler ran %d times, want 3 (max attempts)", len(got))
	}
	for i, d := range got {
		if d.attempt != i+1 {
			t.Errorf("delivery %d has attempt %d", i, d.attempt)
		}
		if err := d.ev.Error(); err == nil || !strings.Contains(err.Error(), "451") {
			t.Errorf("Event.Error() = %v, want the handler's error", err)
		}
	}
	d := dlq.all()[0]
	if string(d.body) != "poison" || d.header["k"] != "v" || d.id != got[0].id {
		t.Errorf("dead letter: body %q header %v id %s", d.body, d.header, d.id)
	}
	if !strings.Contains(d.header[herald.HeaderDeadLetterReason], "451 try later") ||
		d.header[herald.HeaderDeadLetterAttempts] != "3" || d.header[herald.HeaderDeadLetterTopic] != topic {
		t.Errorf("dead-letter headers: %v", d.header)
	}
	if n := errEvents.Load(); n != 3 {
		t.Errorf("go-micro ErrorHandler called %d times, want 3", n)
	}
	if _, ok := errSeen.Load("smtp: 451 try later"); !ok {
		t.Errorf("ErrorHandler did not see the handler's error")
	}
}

func testPermanent(t *testing.T, open func(t *testing.T) herald.Broker) {
	b := connected(t, open(t))
	topic := topicFor(t)
	var r, dlq recorder
	subscribe(t, b, topic, func(e mb.Event) error {
		r.add(e)
		return herald.Permanent(errors.New("not a user.registered event"))
	})
	subscribe(t, b, herald.DefaultDeadLetterTopic(topic), dlq.handler())
	publish(t, b, topic, "garbage", nil)
	waitFor(t, 10*time.Second, "the dead letter", func() bool { return dlq.len() == 1 })
	if n := r.len(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
	if a := dlq.all()[0].header[herald.HeaderDeadLetterAttempts]; a != "1" {
		t.Errorf("dead letter after %s attempts, want 1", a)
	}
}

func testPanic(t *testing.T, open func(t *testing.T) herald.Broker) {
	b := connected(t, open(t))
	topic := topicFor(t)
	var r recorder
	subscribe(t, b, topic, func(e mb.Event) error {
		r.add(e)
		if info, _ := gomicro.Delivery(e); info.Attempt == 1 {
			panic("boom")
		}
		return nil
	}, fast(5))
	publish(t, b, topic, "m", nil)
	waitFor(t, 10*time.Second, "the redelivery after the panic", func() bool { return r.len() >= 2 })
	if err := r.all()[0].ev.Error(); !errors.Is(err, herald.ErrPanic) {
		t.Errorf("Event.Error() after a panic = %v, want ErrPanic", err)
	}
}

func testSubscribeContext(t *testing.T, open func(t *testing.T) herald.Broker) {
	b := connected(t, open(t))
	topic := topicFor(t)
	// Options through SubscribeContext, as a go-micro server passes them.
	ctx := gomicro.ContextWithSubscribeOptions(context.Background(), herald.MaxAttempts(1), herald.DeadLetterTo(topic+".parked"))
	var r, parked recorder
	subscribe(t, b, topic, func(e mb.Event) error { r.add(e); return errors.New("no") }, mb.SubscribeContext(ctx))
	subscribe(t, b, topic+".parked", parked.handler())
	publish(t, b, topic, "m", nil)
	waitFor(t, 10*time.Second, "the dead letter on the topic set in the context", func() bool { return parked.len() == 1 })
	if n := r.len(); n != 1 {
		t.Errorf("handler ran %d times with MaxAttempts(1) from the context", n)
	}
	// A cancelled SubscribeContext: the set-up fails.
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Subscribe(topicFor(t), r.handler(), mb.SubscribeContext(cctx)); err == nil {
		t.Errorf("Subscribe with a cancelled SubscribeContext succeeded")
	}
	// An invalid Herald option in the context is refused.
	if _, err := b.Subscribe(topicFor(t), r.handler(), gomicro.SubscribeWith(herald.MaxAttempts(0))); !errors.Is(err, herald.ErrInvalidOption) {
		t.Errorf("Subscribe with MaxAttempts(0) = %v, want ErrInvalidOption", err)
	}
}

func testPublishContext(t *testing.T, open func(t *testing.T) herald.Broker) {
	b := connected(t, open(t))
	topic := topicFor(t)
	var r recorder
	subscribe(t, b, topic, r.handler())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.Publish(topic, &mb.Message{Body: []byte("cancelled")}, mb.PublishContext(ctx))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a cancelled PublishContext = %v, want context.Canceled", err)
	}
	kctx := gomicro.ContextWithPublishOptions(context.Background(), herald.Key("user-1"))
	if err := b.Publish(topic, &mb.Message{Body: []byte("keyed")}, mb.PublishContext(kctx)); err != nil {
		t.Errorf("Publish with a key in PublishContext: %v", err)
	}
	if err := b.Publish(topic, &mb.Message{Body: []byte("x")}, gomicro.PublishWith(herald.Key(strings.Repeat("k", 2000)))); !errors.Is(err, herald.ErrInvalidOption) {
		t.Errorf("Publish with an invalid key = %v, want ErrInvalidOption", err)
	}
	waitFor(t, 10*time.Second, "the keyed message", func() bool { return r.count("keyed") == 1 })
	if n := r.count("cancelled"); n != 0 {
		t.Errorf("message published with a cancelled context was delivered %d times", n)
	}
}

func testPublishErrors(t *testing.T, open func(t *testing.T) herald.Broker) {
	hb := open(t)
	b := connected(t, hb)
	if err := b.Publish("bad topic!", &mb.Message{Body: []byte("x")}); !errors.Is(err, herald.ErrBadTopic) {
		t.Errorf("Publish to a bad topic = %v, want ErrBadTopic", err)
	}
	if err := b.Publish(topicFor(t), nil); !errors.Is(err, herald.ErrInvalidOption) {
		t.Errorf("Publish(nil) = %v, want ErrInvalidOption", err)
	}
	// The Herald broker closed under the plugin: Publish says so.
	if err := hb.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Publish(topicFor(t), &mb.Message{Body: []byte("x")}); !errors.Is(err, herald.ErrClosed) {
		t.Errorf("Publish on a closed Herald broker = %v, want ErrClosed", err)
	}
	if err := b.Disconnect(); err != nil {
		t.Errorf("Disconnect: %v", err)
	}
	if err := b.Publish(topicFor(t), &mb.Message{Body: []byte("x")}); !errors.Is(err, gomicro.ErrNotConnected) {
		t.Errorf("Publish after Disconnect = %v, want ErrNotConnected", err)
	}
}

func testNotConnected(t *testing.T, open func(t *testing.T) herald.Broker) {
	b := gomicro.New(open(t))
	if err := b.Publish(topicFor(t), &mb.Message{}); !errors.Is(err, gomicro.ErrNotConnected) {
		t.Errorf("Publish before Connect = %v, want ErrNotConnected", err)
	}
	if _, err := b.Subscribe(topicFor(t), func(mb.Event) error { return nil }); !errors.Is(err, gomicro.ErrNotConnected) {
		t.Errorf("Subscribe before Connect = %v, want ErrNotConnected", err)
	}
	if err := b.Disconnect(); err != nil {
		t.Errorf("Disconnect before Connect: %v", err)
	}
	// CloseOnDisconnect: the plugin owns the broker and cannot reopen it.
	owned := gomicro.New(open(t), gomicro.CloseOnDisconnect())
	if err := owned.Connect(); err != nil {
		t.Fatal(err)
	}
	if err := owned.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if err := owned.Connect(); !errors.Is(err, herald.ErrClosed) {
		t.Errorf("Connect after Disconnect closed the broker = %v, want ErrClosed", err)
	}
}
