package gomicro_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	herald "github.com/herald-dev/herald/broker"
	httpbroker "github.com/herald-dev/herald/broker/http"
	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/gomicro"
	regmem "github.com/herald-dev/herald/registry/mem"
	mb "go-micro.dev/v5/broker"
)

// backend opens Herald brokers of one kind for the tests: every call of
// open gives a new client of the same engine (the same in-process bus, the
// same NATS server), as separate processes would have.
type backend struct {
	name string
	open func(t *testing.T) func(t *testing.T) herald.Broker
}

func backends() []backend {
	return []backend{
		{name: "mem", open: func(t *testing.T) func(t *testing.T) herald.Broker {
			bus := mem.New()
			t.Cleanup(func() { _ = bus.Close(context.Background()) })
			return func(t *testing.T) herald.Broker {
				c := bus.Connect()
				t.Cleanup(func() { _ = c.Close(context.Background()) })
				return c
			}
		}},
		{name: "http", open: func(t *testing.T) func(t *testing.T) herald.Broker {
			store := regmem.NewStore()
			secret := []byte("behaviours-secret-behaviours-secret")
			return func(t *testing.T) herald.Broker {
				reg, err := regmem.New(regmem.WithStore(store))
				if err != nil {
					t.Fatal(err)
				}
				b, err := httpbroker.New(reg, httpbroker.WithSpool(t.TempDir()), httpbroker.WithSecret(secret), httpbroker.WithCloseRegistry())
				if err != nil {
					t.Fatalf("httpbroker.New: %v", err)
				}
				t.Cleanup(func() { _ = b.Close(context.Background()) })
				return b
			}
		}},
		{name: "nats", open: func(t *testing.T) func(t *testing.T) herald.Broker {
			srv, err := natsserver.Start()
			if err != nil {
				t.Fatalf("embedded NATS server: %v", err)
			}
			t.Cleanup(srv.Shutdown)
			return func(t *testing.T) herald.Broker {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				b, err := nats.New(ctx, srv.ClientURL(), nats.WithMemoryStorage())
				if err != nil {
					t.Fatalf("nats.New: %v", err)
				}
				t.Cleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					_ = b.Close(ctx)
				})
				return b
			}
		}},
	}
}

// connected returns a connected plugin over hb, disconnected at the end of
// the test.
func connected(t *testing.T, hb herald.Broker, opts ...gomicro.Option) *gomicro.Broker {
	t.Helper()
	b := gomicro.New(hb, append([]gomicro.Option{gomicro.WithDrainTimeout(10 * time.Second), gomicro.WithStartDelay(0)}, opts...)...)
	if err := b.Connect(); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = b.Disconnect() })
	return b
}

var topicSeq atomic.Int64

// topicFor returns a topic of its own for the running test.
func topicFor(t *testing.T) string {
	name := t.Name()
	if len(name) > 120 {
		name = name[len(name)-120:]
	}
	var b strings.Builder
	for _, c := range []byte(name) {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	return fmt.Sprintf("t%d.%s", topicSeq.Add(1), b.String())
}

// delivery is what a handler saw.
type delivery struct {
	topic   string
	header  map[string]string
	body    []byte
	attempt int
	id      string
	ev      mb.Event
}

// recorder collects the deliveries of one or more subscriptions.
type recorder struct {
	mu  sync.Mutex
	got []delivery
}

func (r *recorder) add(e mb.Event) {
	info, _ := gomicro.Delivery(e)
	m := e.Message()
	r.mu.Lock()
	r.got = append(r.got, delivery{topic: e.Topic(), header: m.Header, body: m.Body, attempt: info.Attempt, id: info.ID, ev: e})
	r.mu.Unlock()
}

// handler records and acknowledges.
func (r *recorder) handler() mb.Handler {
	return func(e mb.Event) error { r.add(e); return nil }
}

func (r *recorder) all() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// count returns how many deliveries had body b.
func (r *recorder) count(b string) int {
	n := 0
	for _, d := range r.all() {
		if string(d.body) == b {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

func publish(t *testing.T, b mb.Broker, topic, body string, header map[string]string) {
	t.Helper()
	if err := b.Publish(topic, &mb.Message{Header: header, Body: []byte(body)}); err != nil {
		t.Fatalf("Publish %q: %v", body, err)
	}
}

func subscribe(t *testing.T, b mb.Broker, topic string, h mb.Handler, opts ...mb.SubscribeOption) mb.Subscriber {
	t.Helper()
	s, err := b.Subscribe(topic, h, opts...)
	if err != nil {
		t.Fatalf("Subscribe %q: %v", topic, err)
	}
	return s
}

// fast is a retry policy that keeps the tests quick.
func fast(maxAttempts int) mb.SubscribeOption {
	return gomicro.SubscribeWith(herald.MaxAttempts(maxAttempts), herald.RetryBackoff(herald.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2}))
}
