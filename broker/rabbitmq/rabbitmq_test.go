package rabbitmq_test

import (
	"context"
	"errors"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/rabbitmq"
	amqp "github.com/rabbitmq/amqp091-go"
)

// collector records deliveries for a test goroutine to wait on.
type collector struct {
	mu sync.Mutex
	ms []*broker.Message
	at []time.Time
	ch chan struct{} // signalled on each delivery
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1<<16)} }

func (c *collector) handler(fn broker.Handler) broker.Handler {
	return func(ctx context.Context, m *broker.Message) error {
		c.mu.Lock()
		c.ms = append(c.ms, m.Clone())
		c.at = append(c.at, time.Now())
		c.mu.Unlock()
		c.ch <- struct{}{}
		if fn != nil {
			return fn(ctx, m)
		}
		return nil
	}
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ms)
}

// wait waits for n deliveries in all, failing the test after timeout.
func (c *collector) wait(t *testing.T, n int, timeout time.Duration) []*broker.Message {
	t.Helper()
	deadline := time.After(timeout)
	for c.len() < n {
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("got %d deliveries, want %d, after %v", c.len(), n, timeout)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*broker.Message(nil), c.ms...)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func subscribe(t *testing.T, b broker.Broker, topic string, h broker.Handler, opts ...broker.SubscribeOption) broker.Subscription {
	t.Helper()
	sub, err := b.Subscribe(ctx(t), topic, h, opts...)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe(context.Background()) })
	return sub
}

func publish(t *testing.T, b broker.Broker, topic string, m *broker.Message) {
	t.Helper()
	if err := b.Publish(ctx(t), topic, m); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func TestOpenURL(t *testing.T) {
	raw := serverURL(t)
	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	bad := []struct{ name, url string }{
		{"unknown parameter", raw + sep + "queue=x"},
		{"parameter twice", raw + sep + "exchange=a&exchange=b"},
		{"bad queue type", raw + sep + "queue_type=stream"},
		{"bad prefetch", raw + sep + "prefetch=lots"},
		{"bad heartbeat", raw + sep + "heartbeat=often"},
		{"bad exchange", raw + sep + "exchange=a.b"},
		{"wrong scheme", strings.Replace(raw, "amqp", "redis", 1)},
		{"no host", "amqp://"},
	}
	for _, tc := range bad {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		b, err := rabbitmq.OpenURL(ctx(t), u)
		if err == nil {
			_ = b.Close(ctx(t))
			t.Errorf("%s: OpenURL(%q) succeeded", tc.name, tc.url)
			continue
		}
		if !errors.Is(err, broker.ErrBadURL) && !errors.Is(err, broker.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrBadURL or ErrInvalidOption", tc.name, err)
		}
		if strings.Contains(err.Error(), "guest:guest") {
			t.Errorf("%s: the error shows the password: %v", tc.name, err)
		}
	}

	ex := exchange()
	u, _ := url.Parse(raw + sep + "exchange=" + ex + "&queue_type=classic&queue_expiry=10m&prefetch=8&publish_channels=2&max_pending=64&publish_timeout=5s&heartbeat=5s&max_message_size=1048576")
	b, err := rabbitmq.OpenURL(ctx(t), u)
	if err != nil {
		t.Fatalf("OpenURL: %v", err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	c := newCollector()
	subscribe(t, b, "open.url", c.handler(nil), broker.Queue("g"))
	publish(t, b, "open.url", &broker.Message{Body: []byte("x")})
	c.wait(t, 1, 10*time.Second)
	if err := b.Publish(ctx(t), "open.url", &broker.Message{Body: make([]byte, 2<<20)}); !errors.Is(err, broker.ErrTooLarge) {
		t.Errorf("Publish of 2 MiB with max_message_size=1MiB: %v, want ErrTooLarge", err)
	}
	var conn *amqp.Connection
	if !broker.As(b, &conn) || conn == nil || conn.IsClosed() {
		t.Errorf("As(**amqp.Connection) gave %v", conn)
	}
}

// Headers RabbitMQ would act on (CC, BCC, x-…) or that Herald uses travel
// intact and steer nothing: a "CC" header does not copy the message to the
// topic it names.
func TestReservedHeaderNames(t *testing.T) {
	b := open(t, rabbitmq.WithExchange(exchange()))
	c, cc := newCollector(), newCollector()
	subscribe(t, b, "headers.main", c.handler(nil), broker.Queue("g"))
	subscribe(t, b, "headers.other", cc.handler(nil), broker.Queue("g"))
	h := broker.Header{
		"CC": "headers.other", "BCC": "headers.other", "cc": "headers.other",
		"x-match": "all", "x-delay": "10000", "x-message-ttl": "1", "X-Trace-Id": "abc",
		"herald-attempt": "9", "herald-topic": "nope", "herald-hdr": "raw", "herald-dlq-reason": "kept",
		"": "empty name", strings.Repeat("n", 300): "long name",
	}
	m := &broker.Message{ID: strings.Repeat("i", 300), Header: h, Body: []byte("body")}
	publish(t, b, "headers.main", m)
	got := c.wait(t, 1, 10*time.Second)[0]
	if got.ID != m.ID || got.Topic != "headers.main" || got.Attempt != 1 || string(got.Body) != "body" {
		t.Errorf("got ID %d bytes, topic %q, attempt %d, body %q", len(got.ID), got.Topic, got.Attempt, got.Body)
	}
	if len(got.Header) != len(h) {
		t.Errorf("got %d headers, want %d: %v", len(got.Header), len(h), got.Header)
	}
	for k, v := range h {
		if got.Header[k] != v {
			t.Errorf("header %q = %q, want %q", k, got.Header[k], v)
		}
	}
	marker := &broker.Message{Body: []byte("marker")}
	publish(t, b, "headers.other", marker)
	if ms := cc.wait(t, 1, 10*time.Second); ms[0].ID != marker.ID {
		t.Errorf("the topic named in CC got message %q, want only its own marker", ms[0].ID)
	}
}

// Dead letters wait in the DeadLetterGroup queue of the dead-letter topic
// while nobody subscribes to it.
func TestDeadLettersKeptWithoutSubscriber(t *testing.T) {
	b := open(t, rabbitmq.WithExchange(exchange()))
	c := newCollector()
	subscribe(t, b, "dl.kept", c.handler(func(context.Context, *broker.Message) error {
		return broker.Permanent(errors.New("unusable"))
	}), broker.Queue("g"))
	m := &broker.Message{Header: broker.Header{"k": "v"}, Body: []byte("poison")}
	publish(t, b, "dl.kept", m)
	c.wait(t, 1, 10*time.Second)
	dl := newCollector()
	subscribe(t, b, broker.DefaultDeadLetterTopic("dl.kept"), dl.handler(nil), broker.Queue(rabbitmq.DeadLetterGroup))
	got := dl.wait(t, 1, 10*time.Second)[0]
	if got.ID != m.ID || string(got.Body) != "poison" || got.Header["k"] != "v" || !strings.Contains(got.Header[broker.HeaderDeadLetterReason], "unusable") {
		t.Errorf("dead letter ID %q body %q header %v", got.ID, got.Body, got.Header)
	}
}

// A nacked message waits for its backoff without holding up the messages
// behind it.
func TestRedeliveryDoesNotBlock(t *testing.T) {
	for _, qt := range []rabbitmq.QueueType{rabbitmq.Quorum, rabbitmq.Classic} {
		t.Run(string(qt), func(t *testing.T) {
			b := open(t, rabbitmq.WithExchange(exchange()), rabbitmq.WithQueueType(qt))
			const backoff = 400 * time.Millisecond
			c := newCollector()
			var once sync.Once
			subscribe(t, b, "noblock", c.handler(func(_ context.Context, m *broker.Message) error {
				var err error
				once.Do(func() { err = errors.New("first one fails") })
				return err
			}), broker.Queue("g"), broker.Concurrency(1), broker.RetryBackoff(broker.Backoff{Initial: backoff, Max: backoff}))
			a := &broker.Message{Body: []byte("a")}
			publish(t, b, "noblock", a)
			c.wait(t, 1, 10*time.Second)
			bm := &broker.Message{Body: []byte("b")}
			publish(t, b, "noblock", bm)
			ms := c.wait(t, 3, 10*time.Second)
			if ms[0].ID != a.ID || ms[1].ID != bm.ID || ms[2].ID != a.ID || ms[2].Attempt != 2 || ms[2].Topic != "noblock" {
				t.Errorf("deliveries %s/%d, %s/%d, %s/%d/%s; want a/1, b/1, a/2/noblock", ms[0].Body, ms[0].Attempt, ms[1].Body, ms[1].Attempt, ms[2].Body, ms[2].Attempt, ms[2].Topic)
			}
			c.mu.Lock()
			gap := c.at[2].Sub(c.at[0])
			c.mu.Unlock()
			if gap < backoff-backoff/10 || gap > 2*backoff+time.Second {
				t.Errorf("redelivered %v after the first attempt, want about the %v backoff (its bucket is %v)", gap, backoff, 500*time.Millisecond)
			}
		})
	}
}

// When the server closes every connection (as on a network failure), the
// broker reconnects, declares its queues again and goes on: every message
// whose Publish returned nil is delivered.
func TestReconnectAfterConnectionsClosed(t *testing.T) {
	serverURL(t)
	if _, why := restarter(); why != "" {
		t.Skip("cannot close the server's connections: " + why)
	}
	ex := exchange()
	pub, sub := open(t, rabbitmq.WithExchange(ex)), open(t, rabbitmq.WithExchange(ex))
	c := newCollector()
	subscribe(t, sub, "reconnect", c.handler(nil), broker.Queue("g"))
	var acked []string
	publishSome := func(n int) {
		for range n {
			m := &broker.Message{Body: []byte("x")}
			if err := pub.Publish(ctx(t), "reconnect", m); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			acked = append(acked, m.ID)
		}
	}
	publishSome(50)
	c.wait(t, 50, 10*time.Second)
	out, err := exec.Command("rabbitmqctl", "-q", "close_all_connections", "herald test").CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl close_all_connections: %v\n%s", err, out)
	}
	publishSome(50) // Publish waits for the new connection
	ms := c.wait(t, 100, 20*time.Second)
	got := map[string]bool{}
	for _, m := range ms {
		got[m.ID] = true
	}
	for _, id := range acked {
		if !got[id] {
			t.Errorf("message %s acknowledged by Publish was not delivered", id)
		}
	}
}

// When its queue is deleted under it, a queue group's subscription declares
// it again and goes on consuming.
func TestQueueDeletedUnderSubscription(t *testing.T) {
	ex := exchange()
	b := open(t, rabbitmq.WithExchange(ex))
	c := newCollector()
	subscribe(t, b, "deleted", c.handler(nil), broker.Queue("g"))
	publish(t, b, "deleted", &broker.Message{Body: []byte("before")})
	c.wait(t, 1, 10*time.Second)
	var conn *amqp.Connection
	if !broker.As(b, &conn) {
		t.Fatal("As(**amqp.Connection) = false")
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDelete(ex+":deleted:g", false, false, false); err != nil {
		t.Fatalf("QueueDelete: %v", err)
	}
	_ = ch.Close()
	// Publish until the queue is back and a message gets through.
	deadline := time.Now().Add(15 * time.Second)
	for c.len() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no message delivered after the queue was deleted")
		}
		publish(t, b, "deleted", &broker.Message{Body: []byte("after")})
		select {
		case <-c.ch:
			c.ch <- struct{}{}
		case <-time.After(100 * time.Millisecond):
		}
	}
}
