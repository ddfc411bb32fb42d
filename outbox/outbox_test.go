package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/internal/dbtest"
	"github.com/herald-dev/herald/outbox"
)

const topic = "user.registered"

// counting wraps a broker and counts, by message ID, what it accepted.
// Publish failures are injected with fail.
type counting struct {
	broker.Broker
	fail     atomic.Bool
	attempts atomic.Int64

	mu       sync.Mutex
	accepted map[string]int
}

func newCounting(b broker.Broker) *counting {
	return &counting{Broker: b, accepted: map[string]int{}}
}

var errBrokerDown = errors.New("test broker: down")

func (c *counting) Publish(ctx context.Context, topic string, m *broker.Message, opts ...broker.PublishOption) error {
	c.attempts.Add(1)
	if c.fail.Load() {
		return fmt.Errorf("counting: publish %q: %w", topic, errBrokerDown)
	}
	if err := c.Broker.Publish(ctx, topic, m, opts...); err != nil {
		return err
	}
	c.mu.Lock()
	c.accepted[m.ID]++
	c.mu.Unlock()
	return nil
}

func (c *counting) PublishBatch(ctx context.Context, topic string, ms []*broker.Message, opts ...broker.PublishOption) error {
	c.attempts.Add(1)
	if c.fail.Load() {
		return fmt.Errorf("counting: publish %q: %w", topic, errBrokerDown)
	}
	if err := broker.PublishBatch(ctx, c.Broker, topic, ms, opts...); err != nil {
		return err
	}
	c.mu.Lock()
	for _, m := range ms {
		c.accepted[m.ID]++
	}
	c.mu.Unlock()
	return nil
}

func (c *counting) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.accepted)
}

// share counts what one relay published through a shared broker.
type share struct {
	broker.Broker
	n atomic.Int64
}

func (s *share) PublishBatch(ctx context.Context, topic string, ms []*broker.Message, opts ...broker.PublishOption) error {
	err := broker.PublishBatch(ctx, s.Broker, topic, ms, opts...)
	if err == nil {
		s.n.Add(int64(len(ms)))
	}
	return err
}

// received collects what a subscriber got, by ID.
type received struct {
	mu   sync.Mutex
	msgs map[string][]*broker.Message
}

func subscribe(t *testing.T, b broker.Broker) *received {
	t.Helper()
	r := &received{msgs: map[string][]*broker.Message{}}
	sub, err := b.Subscribe(context.Background(), topic, func(_ context.Context, m *broker.Message) error {
		r.mu.Lock()
		r.msgs[m.ID] = append(r.msgs[m.ID], m.Clone())
		r.mu.Unlock()
		return nil
	}, broker.Queue("test"), broker.Concurrency(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe(context.Background()) })
	return r
}

func (r *received) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *received) get(id string) []*broker.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs[id]
}

func open(t *testing.T, url string) *gorm.DB {
	t.Helper()
	g := dbtest.Open(t, url)
	if err := outbox.Migrate(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	return g
}

// add writes n messages, in transactions of up to 10, and returns them by ID.
func add(t *testing.T, g *gorm.DB, n int) map[string]*broker.Message {
	t.Helper()
	want := map[string]*broker.Message{}
	for i := 0; i < n; {
		err := g.Transaction(func(tx *gorm.DB) error {
			for j := 0; j < 10 && i < n; j, i = j+1, i+1 {
				m := &broker.Message{
					Header: broker.Header{"ce-type": "test", "seq": fmt.Sprint(i), "odd": "a=b; c\x00\"d\"\n"},
					Body:   []byte(fmt.Sprintf("{\"n\":%d,\"bin\":\"\xff\x00\"}", i)),
				}
				if err := outbox.Add(tx, topic, m); err != nil {
					return err
				}
				if m.ID == "" {
					return errors.New("Add did not set the ID")
				}
				want[m.ID] = m.Clone()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return want
}

func run(t *testing.T, r *outbox.Relay) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newRelay(t *testing.T, g *gorm.DB, b broker.Broker, opts ...outbox.Option) *outbox.Relay {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := outbox.NewRelay(g, b, append([]outbox.Option{outbox.WithLogger(log)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond) // polling, with a deadline
	}
}

func backlog(t *testing.T, r *outbox.Relay) int {
	t.Helper()
	n, _, err := r.Backlog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAddRejects(t *testing.T) {
	g := open(t, dbtest.URL(t, dbtest.Engines()[0]))
	cases := map[string]struct {
		topic string
		m     *broker.Message
	}{
		"empty topic":   {"", &broker.Message{}},
		"bad topic":     {"user registered", &broker.Message{}},
		"wild topic":    {"user.*", &broker.Message{}},
		"nil message":   {topic, nil},
		"huge id":       {topic, &broker.Message{ID: string(make([]byte, outbox.MaxIDLength+1))}},
		"sql in topic":  {"x'; DROP TABLE herald_outbox; --", &broker.Message{}},
		"binary header": {topic, &broker.Message{Header: broker.Header{"k": "\xff"}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if err := outbox.Add(g, c.topic, c.m); !errors.Is(err, outbox.ErrInvalid) {
				t.Fatalf("Add = %v, want ErrInvalid", err)
			}
		})
	}
	var n int64
	if err := g.Table(outbox.Table).Count(&n).Error; err != nil || n != 0 {
		t.Fatalf("rows = %d, %v; want 0", n, err)
	}
}

func TestRollbackLeavesNothing(t *testing.T) {
	g := open(t, dbtest.URL(t, dbtest.Engines()[0]))
	boom := errors.New("boom")
	err := g.Transaction(func(tx *gorm.DB) error {
		if err := outbox.Add(tx, topic, &broker.Message{Body: []byte("x")}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if n := backlog(t, newRelay(t, g, mem.New())); n != 0 {
		t.Fatalf("backlog %d after rollback, want 0", n)
	}
}

// TestRelayExactlyOnce runs three relays, each with its own connection
// pool, over one database, and checks that every row is published exactly
// once, byte for byte.
func TestRelayExactlyOnce(t *testing.T) {
	dbtest.Run(t, []string{outbox.Table}, func(t *testing.T, url string) {
		const n = 600
		b := newCounting(mem.New())
		got := subscribe(t, b)
		want := add(t, open(t, url), n)

		var (
			relays []*outbox.Relay
			shares [3]share
		)
		// Open all three first, then start them together, so that none
		// drains the table before the others run.
		for i := range 3 {
			shares[i].Broker = b
			relays = append(relays, newRelay(t, open(t, url), &shares[i], outbox.WithBatchSize(5), outbox.WithPollInterval(5*time.Millisecond)))
		}
		for _, r := range relays {
			run(t, r)
		}
		eventually(t, 60*time.Second, "all messages delivered", func() bool { return got.count() == n })
		eventually(t, 10*time.Second, "backlog drained", func() bool { return backlog(t, relays[0]) == 0 })

		t.Logf("messages published by each relay: %d, %d, %d", shares[0].n.Load(), shares[1].n.Load(), shares[2].n.Load())
		busy := 0
		for i := range shares {
			if shares[i].n.Load() > 0 {
				busy++
			}
		}
		if busy < 2 {
			t.Errorf("only %d of 3 relays published: the test did not exercise concurrent claims", busy)
		}
		acc := b.snapshot()
		if len(acc) != n {
			t.Fatalf("broker accepted %d distinct IDs, want %d", len(acc), n)
		}
		for id, m := range want {
			if acc[id] != 1 {
				t.Errorf("message %s published %d times, want 1", id, acc[id])
			}
			d := got.get(id)
			if len(d) != 1 {
				t.Errorf("message %s delivered %d times, want 1", id, len(d))
				continue
			}
			if string(d[0].Body) != string(m.Body) || !maps.Equal(d[0].Header, m.Header) {
				t.Errorf("message %s delivered as %q %v, want %q %v", id, d[0].Body, d[0].Header, m.Body, m.Header)
			}
		}
	})
}

// TestRelayBrokerOutage checks that a broker outage delays events and loses
// none: rows stay pending while publishes fail, and are delivered, once, after
// the broker recovers.
func TestRelayBrokerOutage(t *testing.T) {
	dbtest.Run(t, []string{outbox.Table}, func(t *testing.T, url string) {
		const n = 40
		b := newCounting(mem.New())
		b.fail.Store(true)
		got := subscribe(t, b)
		g := open(t, url)
		r := newRelay(t, g, b, outbox.WithPollInterval(10*time.Millisecond),
			outbox.WithBackoff(broker.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2}))
		want := add(t, g, n)
		run(t, r)

		// Several failed rounds, each leaving the rows in place.
		eventually(t, 30*time.Second, "relay retried", func() bool { return b.attempts.Load() >= 5 })
		if c := got.count(); c != 0 {
			t.Fatalf("%d messages delivered while the broker was down", c)
		}
		if c := backlog(t, r); c != n {
			t.Fatalf("backlog %d during the outage, want %d", c, n)
		}
		var errs []string
		if err := g.Table(outbox.Table).Where("attempts > 0").Pluck("last_error", &errs).Error; err != nil || len(errs) == 0 {
			t.Fatalf("no failed attempt recorded: %v", err)
		}

		b.fail.Store(false)
		eventually(t, 30*time.Second, "delivered after recovery", func() bool { return got.count() == n })
		eventually(t, 10*time.Second, "backlog drained", func() bool { return backlog(t, r) == 0 })
		for id := range want {
			if c := b.snapshot()[id]; c != 1 {
				t.Errorf("message %s accepted %d times, want 1", id, c)
			}
		}
	})
}

// TestNotifyWakesRelay: with a poll interval of an hour, only Notify can
// make the relay publish.
func TestNotifyWakesRelay(t *testing.T) {
	g := open(t, dbtest.URL(t, dbtest.Engines()[0]))
	b := newCounting(mem.New())
	got := subscribe(t, b)
	r := newRelay(t, g, b, outbox.WithPollInterval(time.Hour))
	run(t, r)
	// The first pass runs at start; wait until it has happened (empty).
	eventually(t, 5*time.Second, "first pass", func() bool { return backlog(t, r) == 0 })
	for i := range 3 {
		add(t, g, 1)
		r.Notify()
		eventually(t, 5*time.Second, "notified publish", func() bool { return got.count() == i+1 })
	}
}

func TestBacklog(t *testing.T) {
	g := open(t, dbtest.URL(t, dbtest.Engines()[0]))
	r := newRelay(t, g, mem.New())
	n, oldest, err := r.Backlog(context.Background())
	if err != nil || n != 0 || !oldest.IsZero() {
		t.Fatalf("empty Backlog = %d, %v, %v", n, oldest, err)
	}
	before := time.Now().Add(-time.Second)
	add(t, g, 3)
	n, oldest, err = r.Backlog(context.Background())
	if err != nil || n != 3 || oldest.Before(before) || oldest.After(time.Now().Add(time.Second)) {
		t.Fatalf("Backlog = %d, %v, %v; want 3 rows from about now", n, oldest, err)
	}
}

func TestNewRelayOptions(t *testing.T) {
	g := open(t, dbtest.URL(t, dbtest.Engines()[0]))
	bad := map[string][]outbox.Option{
		"zero poll":            {outbox.WithPollInterval(0)},
		"zero batch":           {outbox.WithBatchSize(0)},
		"huge batch":           {outbox.WithBatchSize(outbox.MaxBatchSize + 1)},
		"timeout beyond lease": {outbox.WithLease(time.Second), outbox.WithPublishTimeout(2 * time.Second)},
		"nil logger":           {outbox.WithLogger(nil)},
		"bad backoff":          {outbox.WithBackoff(broker.Backoff{Initial: time.Second, Max: time.Millisecond})},
	}
	for name, opts := range bad {
		if _, err := outbox.NewRelay(g, mem.New(), opts...); !errors.Is(err, broker.ErrInvalidOption) {
			t.Errorf("%s: err = %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := outbox.NewRelay(nil, mem.New()); err == nil {
		t.Error("NewRelay(nil db) succeeded")
	}
}
