package httpstats_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-dev/herald/broker"
	httpbroker "github.com/herald-dev/herald/broker/http"
	"github.com/herald-dev/herald/metrics"
	"github.com/herald-dev/herald/metrics/httpstats"
	"github.com/herald-dev/herald/registry/mem"
)

// TestRefusedDeliveriesCounted sends an unsigned delivery to a real
// subscriber endpoint and reads the refusal in a scrape.
func TestRefusedDeliveriesCounted(t *testing.T) {
	ctx := context.Background()
	reg, err := mem.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(ctx) })
	b, err := httpbroker.New(reg, httpbroker.WithSpool(t.TempDir()), httpbroker.WithSecret([]byte("a secret of at least 32 bytes...")),
		httpbroker.WithListen("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(ctx) })
	if _, err := b.Subscribe(ctx, "stats.topic", func(context.Context, *broker.Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	insts, err := reg.Lookup(ctx, httpbroker.ServiceName("stats.topic"))
	if err != nil || len(insts) != 1 {
		t.Fatalf("lookup: %v, %d instances", err, len(insts))
	}
	res, err := http.Post(insts[0].Addr, "application/octet-stream", strings.NewReader("HRB1 unsigned"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned delivery: %s", res.Status)
	}

	pr := prometheus.NewRegistry()
	pr.MustRegister(httpstats.New(b))
	rec := httptest.NewRecorder()
	metrics.Handler(pr).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	got, err := metrics.ParseText(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v := got[`herald_http_broker_refused_total{reason="unsigned"}`]; v != 1 {
		t.Fatalf("refused unsigned = %v, want 1; scrape %v", v, got)
	}
	if v, ok := got[`herald_http_broker_refused_total{reason="forged"}`]; !ok || v != 0 {
		t.Fatalf("refused forged = %v (present %v), want 0", v, ok)
	}
}
