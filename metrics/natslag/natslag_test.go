package natslag_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
	natsbroker "github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/metrics"
	"github.com/herald-dev/herald/metrics/natslag"
)

// TestLagOfAQueueGroup holds a group's handler, publishes, and reads the
// lag through a scrape: it counts what the group has not acknowledged, and
// falls to zero once the handler is released.
func TestLagOfAQueueGroup(t *testing.T) {
	srv, err := natsserver.Start(natsserver.WithPort(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx := context.Background()
	nb, err := natsbroker.New(ctx, srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	b := m.Wrap(nb)
	t.Cleanup(func() { b.Close(context.Background()) })
	lag, ok := natslag.Func(b, "")
	if !ok {
		t.Fatal("natslag.Func does not see the NATS broker through the metrics wrapper")
	}
	reg.MustRegister(m.LagCollector(lag))

	release := make(chan struct{})
	if _, err := b.Subscribe(ctx, "lag.test", func(ctx context.Context, _ *broker.Message) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, broker.Queue("workers")); err != nil {
		t.Fatal(err)
	}
	const n = 5
	for range n {
		if err := b.Publish(ctx, "lag.test", &broker.Message{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	waitLag(t, reg, n)
	close(release)
	waitLag(t, reg, 0)

	if _, ok := natslag.Func(mem.New(), ""); ok {
		t.Fatal("natslag.Func accepts a mem broker")
	}
}

func waitLag(t *testing.T, reg *prometheus.Registry, want float64) {
	t.Helper()
	const sample = `herald_broker_consumer_lag{queue="workers",topic="lag.test"}`
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := gather(t, reg)
		if v, ok := got[sample]; ok && v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", sample, got[sample], want)
		}
		time.Sleep(20 * time.Millisecond) // polling a scrape; nothing to wait on
	}
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	metrics.Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	got, err := metrics.ParseText(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
