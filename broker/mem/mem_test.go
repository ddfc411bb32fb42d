package mem_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/brokertest"
	"github.com/herald-dev/herald/broker/mem"
)

// TestConformance runs the conformance suite. Each client the suite opens
// is a Connect of one bus, as each would be a connection to one server.
func TestConformance(t *testing.T) {
	bus := mem.New()
	t.Cleanup(func() { _ = bus.Close(context.Background()) })
	brokertest.Run(t, func(*testing.T) broker.Broker { return bus.Connect() }, brokertest.Features{
		Persistent:          true, // for the life of the process
		OrderedPerPublisher: true,
	})
}

func TestOpenURL(t *testing.T) {
	ctx := context.Background()
	for _, raw := range []string{"mem://", "mem:", "MEM://"} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		b, err := mem.OpenURL(ctx, u)
		if err != nil {
			t.Errorf("OpenURL(%q): %v", raw, err)
			continue
		}
		if err := b.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	for _, raw := range []string{"mem://host", "mem:///path", "mem://?x=1", "mem://user@", "nats://"} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mem.OpenURL(ctx, u); !errors.Is(err, broker.ErrBadURL) {
			t.Errorf("OpenURL(%q): %v, want ErrBadURL", raw, err)
		}
	}
}

// TestOpenURLIsolated: two brokers opened from "mem://" share nothing.
func TestOpenURLIsolated(t *testing.T) {
	ctx := context.Background()
	var mux broker.URLMux
	mux.Register(mem.Scheme, mem.OpenURL)
	a, err := mux.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	b, err := mux.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	got := make(chan string, 2)
	for _, br := range []broker.Broker{a, b} {
		if _, err := br.Subscribe(ctx, "t", func(_ context.Context, m *broker.Message) error {
			got <- string(m.Body)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Publish(ctx, "t", &broker.Message{Body: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != "a" {
		t.Fatalf("got %q", v)
	}
	select {
	case v := <-got:
		t.Fatalf("a message published on one mem:// broker reached another: %q", v)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestBufferedGroupBurst: a queue group with no member buffers a burst
// without blocking the publisher, then delivers all of it in order, and its
// queue shrinks back.
func TestBufferedGroupBurst(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	defer b.Close(ctx)
	sub, err := b.Subscribe(ctx, "burst", func(context.Context, *broker.Message) error { return nil }, broker.Queue("g"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 100_000
	ms := make([]*broker.Message, 0, 1000)
	for i := range n {
		ms = append(ms, &broker.Message{Body: []byte{byte(i), byte(i >> 8), byte(i >> 16)}})
		if len(ms) == cap(ms) {
			if err := b.PublishBatch(ctx, "burst", ms); err != nil {
				t.Fatal(err)
			}
			ms = ms[:0]
		}
	}
	next := 0
	bad := 0
	done := make(chan struct{})
	_, err = b.Subscribe(ctx, "burst", func(_ context.Context, m *broker.Message) error {
		if int(m.Body[0])|int(m.Body[1])<<8|int(m.Body[2])<<16 != next {
			bad++
		}
		next++
		if next == n {
			close(done)
		}
		return nil
	}, broker.Queue("g"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the buffered burst was not delivered")
	}
	if bad != 0 {
		t.Fatalf("%d of %d messages out of order", bad, n)
	}
}

// TestHandlerPublishes: handlers that publish (to their own topic and
// another) never deadlock, since queues are unbounded and Publish never
// waits for a consumer.
func TestHandlerPublishes(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	defer b.Close(ctx)
	const depth = 20_000
	done := make(chan struct{})
	_, err := b.Subscribe(ctx, "chain", func(ctx context.Context, m *broker.Message) error {
		n := int(m.Body[0]) | int(m.Body[1])<<8 | int(m.Body[2])<<16
		if n == depth {
			close(done)
			return nil
		}
		n++
		next := []byte{byte(n), byte(n >> 8), byte(n >> 16)}
		// Two messages per message handled on a side topic nobody drains yet.
		for range 2 {
			if err := b.Publish(ctx, "side", &broker.Message{Body: next}); err != nil {
				return err
			}
		}
		return b.Publish(ctx, "chain", &broker.Message{Body: next})
	}, broker.Concurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	side := make(chan struct{}, 2*depth)
	_, err = b.Subscribe(ctx, "side", func(context.Context, *broker.Message) error {
		side <- struct{}{}
		return nil
	}, broker.Queue("slow"), broker.Concurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "chain", &broker.Message{Body: []byte{0, 0, 0}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a chain of handlers that publish did not finish")
	}
	for range 2 * depth {
		select {
		case <-side:
		case <-time.After(10 * time.Second):
			t.Fatal("side messages missing")
		}
	}
}
