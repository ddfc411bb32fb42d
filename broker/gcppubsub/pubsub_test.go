package gcppubsub_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/brokertest"
	"github.com/herald-dev/herald/broker/gcppubsub"
	"github.com/herald-dev/herald/internal/testproxy"
)

const project = "herald-test"

// startServer runs the official in-process Pub/Sub fake for the test.
func startServer(t testing.TB) *pstest.Server {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// open returns a new client of srv through OpenURL, closed when the test
// ends.
func open(t testing.TB, srv *pstest.Server, query string) broker.Broker {
	t.Helper()
	return openAt(t, srv.Addr, query)
}

// openAt returns a new client of the server at addr.
func openAt(t testing.TB, addr, query string) broker.Broker {
	t.Helper()
	u, err := url.Parse("gcppubsub://" + project + "?endpoint=" + addr + query)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := gcppubsub.OpenURL(ctx, u)
	if err != nil {
		t.Fatalf("OpenURL: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}

func TestConformance(t *testing.T) {
	srv := startServer(t)
	// The clients reach pstest through a proxy: restarting it is an outage
	// (every connection dropped, none accepted for a moment) after which
	// pstest still has its state, as Pub/Sub, a managed service, would.
	p := testproxy.Start(t, srv.Addr)
	brokertest.Run(t, func(t *testing.T) broker.Broker { return openAt(t, p.Addr(), "") }, brokertest.Features{
		Persistent: true,
		// Without a Key, Pub/Sub does not order messages.
		OrderedPerPublisher: false,
		Restart:             p.Restart,
		Timeout:             15 * time.Second,
	})
}

// collector gathers deliveries from a handler.
type collector struct {
	mu  sync.Mutex
	got []broker.Message
}

func (c *collector) add(m *broker.Message) {
	c.mu.Lock()
	c.got = append(c.got, *m.Clone())
	c.mu.Unlock()
}

func (c *collector) wait(t testing.TB, n int, timeout time.Duration) []broker.Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		got := append([]broker.Message(nil), c.got...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d messages, want %d within %v", len(got), n, timeout)
		}
		<-time.After(5 * time.Millisecond)
	}
}

// Headers Pub/Sub cannot carry as attributes (long values, "goog" names,
// invalid UTF-8) arrive all the same.
func TestPackedHeaders(t *testing.T) {
	srv := startServer(t)
	b := open(t, srv, "")
	ctx := context.Background()
	var got collector
	s, err := b.Subscribe(ctx, "packed.headers", func(_ context.Context, m *broker.Message) error {
		got.add(m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe(ctx)
	long := string(make([]byte, 3000))
	h := broker.Header{"long": long, "google-thing": "x", "bad-utf8": "\xff\xfe", "plain": "p"}
	m := &broker.Message{Header: h, Body: []byte("b")}
	if err := b.Publish(ctx, "packed.headers", m); err != nil {
		t.Fatal(err)
	}
	d := got.wait(t, 1, 10*time.Second)[0]
	for k, v := range h {
		if d.Header[k] != v {
			t.Errorf("header %q: got %q, want %q", k, d.Header[k], v)
		}
	}
	if len(d.Header) != len(h) || d.ID != m.ID {
		t.Errorf("delivered ID %q header keys %d, want %q and %d", d.ID, len(d.Header), m.ID, len(h))
	}
}

// Without a dead-letter policy, attempts are counted by the subscriber.
func TestWithoutDeadLetterPolicy(t *testing.T) {
	srv := startServer(t)
	b := open(t, srv, "&dead_letter_policy=false")
	ctx := context.Background()
	var got collector
	s, err := b.Subscribe(ctx, "nodlp", func(_ context.Context, m *broker.Message) error {
		got.add(m)
		if m.Attempt < 3 {
			return errors.New("again")
		}
		return nil
	}, broker.Queue("w"), broker.RetryBackoff(broker.Backoff{Initial: 10 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe(ctx)
	if err := b.Publish(ctx, "nodlp", &broker.Message{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	for i, d := range got.wait(t, 3, 10*time.Second) {
		if d.Attempt != i+1 {
			t.Errorf("delivery %d has Attempt %d", i, d.Attempt)
		}
	}
}

// Messages with the same Key arrive in publish order.
func TestOrderingKey(t *testing.T) {
	srv := startServer(t)
	b := open(t, srv, "")
	ctx := context.Background()
	var got collector
	s, err := b.Subscribe(ctx, "ordered", func(_ context.Context, m *broker.Message) error {
		got.add(m)
		return nil
	}, broker.Queue("w"), broker.Concurrency(4))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe(ctx)
	const n = 10
	for i := range n {
		if err := b.Publish(ctx, "ordered", &broker.Message{Body: []byte{byte(i)}}, broker.Key("k")); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range got.wait(t, n, 10*time.Second) {
		if int(d.Body[0]) != i {
			t.Fatalf("delivery %d is message %d", i, d.Body[0])
		}
	}
}

func TestTooLarge(t *testing.T) {
	srv := startServer(t)
	b := open(t, srv, "&max_message_bytes=65536")
	err := b.Publish(context.Background(), "big", &broker.Message{Body: make([]byte, 100<<10)})
	if !errors.Is(err, broker.ErrTooLarge) {
		t.Fatalf("Publish of 100 KiB with a 64 KiB limit: %v, want ErrTooLarge", err)
	}
}

func TestOpenURLErrors(t *testing.T) {
	for _, bad := range []string{
		"gcppubsub://",
		"gcppubsub://p:1",
		"gcppubsub://p?nope=1",
		"gcppubsub://p?server_backoff=maybe",
		"gcppubsub://p/path",
	} {
		u, _ := url.Parse(bad)
		if _, err := gcppubsub.OpenURL(context.Background(), u); !errors.Is(err, broker.ErrBadURL) {
			t.Errorf("OpenURL(%q) = %v, want ErrBadURL", bad, err)
		}
	}
}
