package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/metrics"
)

func TestWrapCountsOutcomes(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	b := m.Wrap(mem.New())
	t.Cleanup(func() { b.Close(context.Background()) })
	ctx := context.Background()

	// "ok" acks at once; "flaky" fails once then acks; "poison" is
	// permanent; "panic" panics on every attempt (2 attempts: retry, then
	// dead letter).
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan struct{}, 16)
	h := func(ctx context.Context, msg *broker.Message) error {
		mu.Lock()
		seen[string(msg.Body)]++
		n := seen[string(msg.Body)]
		mu.Unlock()
		defer func() { done <- struct{}{} }()
		switch string(msg.Body) {
		case "flaky":
			if n == 1 {
				return errors.New("try again")
			}
		case "poison":
			return broker.Permanent(errors.New("bad"))
		case "panic":
			panic("boom")
		}
		return nil
	}
	if _, err := b.Subscribe(ctx, "t.a", h, broker.Queue("g"), broker.MaxAttempts(2),
		broker.RetryBackoff(broker.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1})); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"ok", "flaky", "poison", "panic"} {
		if err := b.Publish(ctx, "t.a", &broker.Message{Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Publish(ctx, "bad topic", &broker.Message{}); err == nil {
		t.Fatal("publish to a bad topic succeeded")
	}
	// 1 + 2 + 1 + 2 handler calls.
	for range 6 {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("deliveries did not arrive")
		}
	}
	want := map[string]float64{
		`herald_broker_published_total{topic="t.a"}`:                               4,
		`herald_broker_publish_errors_total{topic="bad topic"}`:                    1,
		`herald_broker_delivered_total{queue="g",topic="t.a"}`:                     6,
		`herald_broker_acked_total{queue="g",topic="t.a"}`:                         2,
		`herald_broker_nacked_total{queue="g",topic="t.a"}`:                        2,
		`herald_broker_dead_lettered_total{queue="g",topic="t.a"}`:                 2,
		`herald_broker_handler_seconds_count{outcome="ack",queue="g",topic="t.a"}`: 2,
	}
	// The last handler call's counters are updated after it signals done:
	// poll until they settle.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := scrape(t, metrics.Handler(reg))
		bad := ""
		for k, v := range want {
			if got[k] != v {
				bad += k + " "
			}
		}
		if bad == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics %s differ: got %v", bad, got)
		}
		time.Sleep(10 * time.Millisecond) // polling a scrape; nothing to wait on
	}
}

// scrape reads the text exposition of h into sample name{labels} → value.
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := metrics.ParseText(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestBacklogCollector(t *testing.T) {
	oldest := time.Now().Add(-90 * time.Second)
	var fail error
	c := metrics.NewBacklogCollector("user", func(context.Context) (int, time.Time, error) { return 3, oldest, fail })
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	got := scrape(t, metrics.Handler(reg))
	if n := got[`herald_outbox_backlog{outbox="user"}`]; n != 3 {
		t.Fatalf("backlog %v, want 3", n)
	}
	if age := got[`herald_outbox_oldest_age_seconds{outbox="user"}`]; age < 90 || age > 120 {
		t.Fatalf("oldest age %v, want about 90", age)
	}
	fail = errors.New("database down")
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "database down") {
		t.Fatalf("gather with a failing backlog: %v", err)
	}
}

func TestNewRejectsDoubleRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.New(reg); err == nil {
		t.Fatal("second New on one registry succeeded")
	}
	if _, err := metrics.New(nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

func TestWrapKeepsDeadLetterBrowser(t *testing.T) {
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Wrap(mem.New()).(broker.DeadLetterBrowser); !ok {
		t.Error("wrapped mem broker lost DeadLetterBrowser")
	}
	plain := struct{ broker.Broker }{mem.New()} // hides the capability
	if _, ok := m.Wrap(plain).(broker.DeadLetterBrowser); ok {
		t.Error("wrapped broker claims DeadLetterBrowser its backend lacks")
	}
}
