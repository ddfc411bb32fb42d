package nats_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/broker/nats/natsserver"
)

const wait = 10 * time.Second

func TestRoundTrip(t *testing.T) {
	srv := startServer(t)
	b := open(t, srv)
	got := make(collector, 10)
	subscribe(t, b, "user.registered", got.handler)

	header := broker.Header{
		"content-type":   "application/json",
		"Case-Sensitive": "A",
		"case-sensitive": "b",
		"spaces":         "  padded\t",
		"lines":          "one\r\ntwo\nthree",
		"Nats-Msg-Id":    "not-the-id",
		"nats-rollup":    "all",
		"bad:name":       "x",
		"ünïcode":        "välue ✓",
		"empty":          "",
		"herald-hdr":     "reserved but kept",
	}
	body := []byte{0, 1, 2, 255, '\r', '\n'}
	m := &broker.Message{Header: maps.Clone(header), Body: bytes.Clone(body)}
	before := time.Now().Add(-time.Second)
	publish(t, b, "user.registered", m)
	if m.ID == "" {
		t.Fatal("Publish did not set the ID")
	}
	d := got.next(t, wait)
	if d.ID != m.ID {
		t.Errorf("ID = %q, want %q", d.ID, m.ID)
	}
	if !maps.Equal(d.Header, header) {
		t.Errorf("Header = %q, want %q", d.Header, header)
	}
	if !bytes.Equal(d.Body, body) {
		t.Errorf("Body = %q, want %q", d.Body, body)
	}
	if d.Topic != "user.registered" || d.Attempt != 1 {
		t.Errorf("Topic, Attempt = %q, %d; want user.registered, 1", d.Topic, d.Attempt)
	}
	if d.PublishedAt.Before(before) || d.PublishedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("PublishedAt = %v, not around now", d.PublishedAt)
	}
}

func TestReservedIDHeadersNotDelivered(t *testing.T) {
	b := open(t, startServer(t))
	got := make(collector, 1)
	subscribe(t, b, "t", got.handler)
	publish(t, b, "t", &broker.Message{ID: "id-1", Header: broker.Header{broker.HeaderID: "forged", broker.HeaderPublishedAt: "forged", "k": "v"}})
	d := got.next(t, wait)
	if d.ID != "id-1" || len(d.Header) != 1 || d.Header["k"] != "v" {
		t.Errorf("got ID %q header %q; want id-1 and only k=v", d.ID, d.Header)
	}
}

func TestQueueGroup(t *testing.T) {
	b := open(t, startServer(t))
	const n = 50
	// Published before the group exists: a new group starts at the
	// beginning of the stream.
	for i := range n {
		publish(t, b, "orders", &broker.Message{ID: fmt.Sprint("early-", i)})
	}
	got := make(collector, 2*n)
	subscribe(t, b, "orders", got.handler, broker.Queue("billing"))
	subscribe(t, b, "orders", got.handler, broker.Queue("billing"), broker.Concurrency(4))
	other := make(collector, 2*n)
	subscribe(t, b, "orders", other.handler, broker.Queue("audit"))
	for i := range n {
		publish(t, b, "orders", &broker.Message{ID: fmt.Sprint("late-", i)})
	}
	for name, c := range map[string]collector{"billing": got, "audit": other} {
		seen := map[string]bool{}
		for range 2 * n {
			m := c.next(t, wait)
			if seen[m.ID] {
				t.Errorf("%s: %s delivered twice", name, m.ID)
			}
			seen[m.ID] = true
		}
		c.none(t, 200*time.Millisecond)
	}
}

func TestBroadcastGetsOnlyNewMessages(t *testing.T) {
	b := open(t, startServer(t))
	publish(t, b, "news", &broker.Message{ID: "old"})
	a, c := make(collector, 4), make(collector, 4)
	subscribe(t, b, "news", a.handler)
	subscribe(t, b, "news", c.handler)
	publish(t, b, "news", &broker.Message{ID: "new"})
	for _, col := range []collector{a, c} {
		if m := col.next(t, wait); m.ID != "new" {
			t.Errorf("got %s, want new", m.ID)
		}
		col.none(t, 200*time.Millisecond)
	}
}

func TestRetryCountsAttempts(t *testing.T) {
	b := open(t, startServer(t))
	attempts := make(chan int, 10)
	h := func(_ context.Context, m *broker.Message) error {
		attempts <- m.Attempt
		if m.Attempt < 3 {
			return errors.New("not yet")
		}
		return nil
	}
	subscribe(t, b, "jobs", h, broker.Queue("w"), broker.RetryBackoff(broker.Backoff{Initial: 10 * time.Millisecond}))
	publish(t, b, "jobs", &broker.Message{})
	for want := 1; want <= 3; want++ {
		select {
		case got := <-attempts:
			if got != want {
				t.Fatalf("attempt %d, want %d", got, want)
			}
		case <-time.After(wait):
			t.Fatalf("no attempt %d", want)
		}
	}
	select {
	case a := <-attempts:
		t.Fatalf("delivered again (attempt %d) after success", a)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestRetryWaitsForBackoff(t *testing.T) {
	b := open(t, startServer(t))
	times := make(chan time.Time, 4)
	h := func(_ context.Context, m *broker.Message) error {
		times <- time.Now()
		if m.Attempt == 1 {
			return errors.New("later")
		}
		return nil
	}
	subscribe(t, b, "slow", h, broker.RetryBackoff(broker.Backoff{Initial: 400 * time.Millisecond}))
	publish(t, b, "slow", &broker.Message{})
	first, second := <-times, <-times
	if gap := second.Sub(first); gap < 350*time.Millisecond {
		t.Errorf("redelivered after %v, want about 400ms", gap)
	}
}

func TestDeadLetter(t *testing.T) {
	b := open(t, startServer(t))
	dlq := make(collector, 4)
	subscribe(t, b, "pay.dlq", dlq.handler)
	var calls atomic.Int32
	fail := func(_ context.Context, m *broker.Message) error {
		calls.Add(1)
		if m.Header["kind"] == "poison" {
			return broker.Permanent(errors.New("cannot parse"))
		}
		return errors.New("flaky")
	}
	subscribe(t, b, "pay", fail, broker.Queue("pay"), broker.MaxAttempts(2),
		broker.RetryBackoff(broker.Backoff{Initial: 5 * time.Millisecond}))

	publish(t, b, "pay", &broker.Message{ID: "p1", Header: broker.Header{"kind": "poison"}, Body: []byte("x")})
	d := dlq.next(t, wait)
	if d.ID != "p1" || string(d.Body) != "x" || d.Header["kind"] != "poison" {
		t.Errorf("dead letter %q %q %q; want the original", d.ID, d.Body, d.Header)
	}
	if d.Header[broker.HeaderDeadLetterTopic] != "pay" || d.Header[broker.HeaderDeadLetterQueue] != "pay" ||
		d.Header[broker.HeaderDeadLetterAttempts] != "1" || d.Header[broker.HeaderDeadLetterReason] == "" {
		t.Errorf("dead-letter headers %q", d.Header)
	}

	publish(t, b, "pay", &broker.Message{ID: "p2"})
	d = dlq.next(t, wait)
	if d.ID != "p2" || d.Header[broker.HeaderDeadLetterAttempts] != "2" {
		t.Errorf("dead letter %s after %s attempts; want p2 after 2", d.ID, d.Header[broker.HeaderDeadLetterAttempts])
	}
	dlq.none(t, 300*time.Millisecond)
	if n := calls.Load(); n != 3 {
		t.Errorf("handler called %d times, want 3 (1 poison + 2 flaky)", n)
	}
}

func TestReplayNotSwallowedByDedupe(t *testing.T) {
	b := open(t, startServer(t))
	got := make(collector, 8)
	subscribe(t, b, "mail", got.handler, broker.Queue("mailer"))

	publish(t, b, "mail", &broker.Message{ID: "m1", Body: []byte("hi")})
	if m := got.next(t, wait); m.ID != "m1" {
		t.Fatalf("got %s, want m1", m.ID)
	}
	// The same ID again within the window: JetStream drops it, Publish
	// still succeeds (an outbox relay retrying).
	publish(t, b, "mail", &broker.Message{ID: "m1", Body: []byte("hi")})
	got.none(t, 300*time.Millisecond)

	// A replay of its dead letter keeps the ID and must be delivered.
	dead := broker.NewDeadLetter(&broker.Message{ID: "m1", Body: []byte("hi"), Topic: "mail", Attempt: 5},
		&broker.SubscribeOptions{Queue: "mailer"}, errors.New("smtp down"))
	topic, replay := broker.ReplayOf(dead)
	publish(t, b, topic, replay)
	m := got.next(t, wait)
	if m.ID != "m1" || string(m.Body) != "hi" || m.Header[broker.HeaderReplayedAt] == "" {
		t.Errorf("replay delivered as %q %q %q", m.ID, m.Body, m.Header)
	}
	// Replaying it again (another replay time) is delivered again.
	_, again := broker.ReplayOf(dead)
	again.Header[broker.HeaderReplayedAt] = time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)
	publish(t, b, topic, again)
	if m := got.next(t, wait); m.ID != "m1" {
		t.Errorf("second replay delivered as %q", m.ID)
	}
}

func TestRestartLosesNothing(t *testing.T) {
	srv := startServer(t)
	log := testLogger(t)
	b := open(t, srv, nats.WithLogger(log))
	const n = 40
	// A delivery in flight when the server stops may never reach the
	// subscriber: JetStream redelivers it after the AckWait.
	group := make(collector, 4*n)
	subscribe(t, b, "evt", group.handler, broker.Queue("g"), broker.Concurrency(2), broker.AckWait(2*time.Second), broker.WithLogger(log))
	bcast := make(collector, 4*n)
	subscribe(t, b, "evt", bcast.handler, broker.AckWait(2*time.Second), broker.WithLogger(log))

	for i := range n / 2 {
		publish(t, b, "evt", &broker.Message{ID: fmt.Sprint("before-", i)})
	}
	if err := srv.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	for i := range n / 2 {
		publish(t, b, "evt", &broker.Message{ID: fmt.Sprint("after-", i)})
	}
	for name, c := range map[string]collector{"group": group, "broadcast": bcast} {
		seen := map[string]bool{}
		for len(seen) < n {
			m := c.next(t, 15*time.Second)
			t.Logf("%s got %s attempt %d", name, m.ID, m.Attempt)
			seen[m.ID] = true
		}
		for i := range n / 2 {
			if !seen[fmt.Sprint("before-", i)] || !seen[fmt.Sprint("after-", i)] {
				t.Errorf("%s: message %d missing", name, i)
			}
		}
	}
}

func TestBroadcastConsumerLostIsRecreated(t *testing.T) {
	srv := startServer(t)
	b := open(t, srv)
	got := make(collector, 8)
	subscribe(t, b, "lost", got.handler)
	publish(t, b, "lost", &broker.Message{ID: "a"})
	if m := got.next(t, wait); m.ID != "a" {
		t.Fatalf("got %s", m.ID)
	}
	// Delete the consumer behind the broker's back, as a server that lost
	// it would.
	if !deleteConsumers(t, b, "herald~lost") {
		t.Fatal("no consumer to delete")
	}
	publish(t, b, "lost", &broker.Message{ID: "b"})
	if m := got.next(t, 30*time.Second); m.ID != "b" {
		t.Fatalf("got %s, want b", m.ID)
	}
}

func TestLongHandlerNotRedelivered(t *testing.T) {
	b := open(t, startServer(t))
	var calls atomic.Int32
	done := make(chan int, 4)
	h := func(ctx context.Context, m *broker.Message) error {
		calls.Add(1)
		select {
		case <-time.After(3 * time.Second): // three ack waits
		case <-ctx.Done():
			return ctx.Err()
		}
		done <- m.Attempt
		return nil
	}
	subscribe(t, b, "long", h, broker.Queue("w"), broker.AckWait(time.Second), broker.Concurrency(2))
	publish(t, b, "long", &broker.Message{})
	if a := <-done; a != 1 {
		t.Errorf("attempt %d, want 1", a)
	}
	select {
	case a := <-done:
		t.Errorf("redelivered (attempt %d) while the handler was running", a)
	case <-time.After(time.Second):
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
}

func TestConcurrency(t *testing.T) {
	b := open(t, startServer(t))
	const limit, n = 3, 12
	var (
		mu       sync.Mutex
		running  int
		peak     int
		finished = make(chan struct{}, n)
		release  = make(chan struct{})
		once     sync.Once
	)
	h := func(ctx context.Context, _ *broker.Message) error {
		mu.Lock()
		running++
		peak = max(peak, running)
		full := running == limit
		mu.Unlock()
		if full {
			once.Do(func() { close(release) }) // running reaches the limit again later
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		mu.Lock()
		running--
		mu.Unlock()
		finished <- struct{}{}
		return nil
	}
	subscribe(t, b, "par", h, broker.Concurrency(limit))
	ms := make([]*broker.Message, n)
	for i := range ms {
		ms[i] = &broker.Message{}
	}
	if err := b.PublishBatch(ctxT(t, wait), "par", ms); err != nil {
		t.Fatal(err)
	}
	for range n {
		select {
		case <-finished:
		case <-time.After(wait):
			t.Fatal("handlers did not finish")
		}
	}
	if peak != limit {
		t.Errorf("peak concurrency %d, want %d", peak, limit)
	}
}

func TestPublishBatchOrderAndIDs(t *testing.T) {
	b := open(t, startServer(t))
	got := make(collector, 300)
	subscribe(t, b, "batch", got.handler)
	ms := make([]*broker.Message, 300)
	for i := range ms {
		ms[i] = &broker.Message{Body: []byte(fmt.Sprint(i))}
	}
	if err := broker.PublishBatch(ctxT(t, wait), b, "batch", ms); err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.ID == "" {
			t.Fatalf("message %d has no ID", i)
		}
		t.Logf("waiting for %d", i)
		d := got.next(t, wait)
		if d.ID != m.ID || string(d.Body) != fmt.Sprint(i) {
			t.Fatalf("delivery %d is %s %q, want %s %q", i, d.ID, d.Body, m.ID, fmt.Sprint(i))
		}
	}
}

func TestTooLarge(t *testing.T) {
	b := open(t, startServer(t))
	got := make(collector, 1)
	subscribe(t, b, "big", got.handler)
	mib := bytes.Repeat([]byte("x"), 1<<20)
	publish(t, b, "big", &broker.Message{Body: mib, Header: broker.Header{"k": "v"}})
	if d := got.next(t, wait); !bytes.Equal(d.Body, mib) {
		t.Errorf("1 MiB body came back as %d bytes", len(d.Body))
	}
	err := b.Publish(ctxT(t, wait), "big", &broker.Message{Body: make([]byte, natsserver.DefaultMaxPayload)})
	if !errors.Is(err, broker.ErrTooLarge) {
		t.Errorf("8 MiB body: err = %v, want ErrTooLarge", err)
	}
	err = b.PublishBatch(ctxT(t, wait), "big", []*broker.Message{{Body: make([]byte, natsserver.DefaultMaxPayload)}})
	if !errors.Is(err, broker.ErrTooLarge) {
		t.Errorf("batch of 8 MiB body: err = %v, want ErrTooLarge", err)
	}
}

func TestClosed(t *testing.T) {
	srv := startServer(t)
	b, err := nats.New(ctxT(t, wait), srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	h := func(context.Context, *broker.Message) error { return nil }
	if _, err := b.Subscribe(ctxT(t, wait), "c", h); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctxT(t, wait)); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := b.Close(ctxT(t, wait)); err != nil {
		t.Errorf("second close: %v", err)
	}
	if err := b.Publish(ctxT(t, wait), "c", &broker.Message{}); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("publish after close: %v, want ErrClosed", err)
	}
	if _, err := b.Subscribe(ctxT(t, wait), "c", h); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("subscribe after close: %v, want ErrClosed", err)
	}
}

func TestUnsubscribeWaitsForHandlers(t *testing.T) {
	b := open(t, startServer(t))
	started, finished := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h := func(context.Context, *broker.Message) error {
		once.Do(func() { close(started) })
		time.Sleep(300 * time.Millisecond) // a handler at work
		close(finished)
		return nil
	}
	sub := subscribe(t, b, "u", h, broker.Queue("u"))
	publish(t, b, "u", &broker.Message{})
	<-started
	if err := sub.Unsubscribe(ctxT(t, wait)); err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
	select {
	case <-finished:
	default:
		t.Fatal("Unsubscribe returned before the handler finished")
	}
	if err := sub.Unsubscribe(ctxT(t, wait)); err != nil {
		t.Errorf("second unsubscribe: %v", err)
	}
}

func TestUnsubscribeBoundedByContext(t *testing.T) {
	b := open(t, startServer(t))
	started := make(chan struct{})
	cancelled := make(chan struct{})
	h := func(ctx context.Context, _ *broker.Message) error {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return ctx.Err()
	}
	sub := subscribe(t, b, "stuck", h, broker.Queue("s"))
	publish(t, b, "stuck", &broker.Message{})
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := sub.Unsubscribe(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unsubscribe: %v, want DeadlineExceeded", err)
	}
	select {
	case <-cancelled:
	case <-time.After(wait):
		t.Fatal("handler's context not cancelled")
	}
	// The message went back to the group.
	got := make(collector, 1)
	subscribe(t, b, "stuck", got.handler, broker.Queue("s"))
	if m := got.next(t, wait); m.Attempt != 2 {
		t.Errorf("redelivered with attempt %d, want 2", m.Attempt)
	}
}

func TestOpenURL(t *testing.T) {
	ctx := ctxT(t, wait)
	u, _ := url.Parse("nats://?dir=" + url.QueryEscape(t.TempDir()) + "&storage=memory&max_age=1h")
	b, err := nats.OpenURL(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	got := make(collector, 1)
	if _, err := b.Subscribe(ctx, "x", got.handler); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "x", &broker.Message{ID: "1"}); err != nil {
		t.Fatal(err)
	}
	if m := got.next(t, wait); m.ID != "1" {
		t.Errorf("got %s", m.ID)
	}
	var srv *natsserver.Server
	if !broker.As(b, &srv) {
		t.Fatal("As(*natsserver.Server) = false for an embedded server")
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.NATS() != nil {
		t.Error("embedded server still running after Close")
	}

	for _, raw := range []string{"nats://?bogus=1", "nats://?storage=disk", "nats://?max_age=soon", "nats://127.0.0.1:1?dir=/tmp"} {
		u, _ := url.Parse(raw)
		if _, err := nats.OpenURL(ctx, u); !errors.Is(err, broker.ErrBadURL) {
			t.Errorf("OpenURL(%s) = %v, want ErrBadURL", raw, err)
		}
	}
}

func TestOpenURLServer(t *testing.T) {
	srv := startServer(t)
	u, _ := url.Parse(srv.ClientURL() + "?prefix=other")
	b, err := nats.OpenURL(ctxT(t, wait), u)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctxT(t, wait))
	if err := b.Publish(ctxT(t, wait), "x", &broker.Message{}); err != nil {
		t.Fatal(err)
	}
	if !streamExists(t, b, "other~x") {
		t.Error("stream other~x missing")
	}
}

func TestPrefetchedMessageKeptAlive(t *testing.T) {
	srv := startServer(t)
	a, b := open(t, srv), open(t, srv)
	type delivery struct {
		member string
		id     string
		att    int
	}
	got := make(chan delivery, 8)
	slow := func(member string) broker.Handler {
		return func(ctx context.Context, m *broker.Message) error {
			got <- delivery{member, m.ID, m.Attempt}
			if m.ID == "first" {
				select { // a handler three AckWaits long, with "second" prefetched behind it
				case <-time.After(3 * time.Second):
				case <-ctx.Done():
				}
			}
			return nil
		}
	}
	publish(t, a, "pf", &broker.Message{ID: "first"})
	publish(t, a, "pf", &broker.Message{ID: "second"})
	subscribe(t, a, "pf", slow("a"), broker.Queue("g"), broker.AckWait(time.Second))
	first := <-got
	if first.id != "first" {
		t.Fatalf("first delivery %+v", first)
	}
	// A second member joins: it must not get a message the first one holds.
	subscribe(t, b, "pf", slow("b"), broker.Queue("g"), broker.AckWait(time.Second))
	seen := map[string]int{}
	deadline := time.After(10 * time.Second)
	for len(seen) < 2 || seen["second"] == 0 {
		select {
		case d := <-got:
			seen[d.id]++
			if d.att != 1 {
				t.Errorf("%s delivered to %s with attempt %d: redelivered while held", d.id, d.member, d.att)
			}
		case <-deadline:
			t.Fatalf("deliveries %v", seen)
		}
		seen["first"] = 1
	}
	select {
	case d := <-got:
		t.Errorf("extra delivery %+v", d)
	case <-time.After(1500 * time.Millisecond):
	}
}
