package system_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/metrics"
)

// TestMetricsCountRegistrations scrapes /metrics of the admin listener and
// of the user service after N registrations: the counters match the events
// sent.
func TestMetricsCountRegistrations(t *testing.T) {
	s, client := start(t)
	const n = 5
	for i := range n {
		if _, err := client.Create(context.Background(), connect.NewRequest(&userv1.CreateRequest{
			Name: fmt.Sprintf("Metric %d", i), Email: fmt.Sprintf("metric%d@example.com", i), Password: "correct horse battery staple",
		})); err != nil {
			t.Fatal(err)
		}
	}
	waitMails(t, s.MailboxDir, n)

	want := map[string]float64{
		`herald_broker_published_total{topic="user.registered"}`:                                   n,
		`herald_broker_delivered_total{queue="email",topic="user.registered"}`:                     n,
		`herald_broker_acked_total{queue="email",topic="user.registered"}`:                         n,
		`herald_broker_handler_seconds_count{outcome="ack",queue="email",topic="user.registered"}`: n,
		`herald_outbox_backlog{outbox="user"}`:                                                     0,
		`herald_broker_consumer_lag{queue="email",topic="user.registered"}`:                        0,
		`herald_outbox_oldest_age_seconds{outbox="user"}`:                                          0,
	}
	absent := []string{
		`herald_broker_nacked_total{queue="email",topic="user.registered"}`,
		`herald_broker_dead_lettered_total{queue="email",topic="user.registered"}`,
		`herald_broker_publish_errors_total{topic="user.registered"}`,
	}
	// The mail is in the mailbox before the handler returns and is counted:
	// poll the scrape until it settles.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := scrapeURL(t, "http://"+s.AdminAddr+"/metrics")
		diff := ""
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				diff += fmt.Sprintf("\n  %s = %v (present %v), want %v", k, g, ok, v)
			}
		}
		for _, k := range absent {
			if g, ok := got[k]; ok && g != 0 {
				diff += fmt.Sprintf("\n  %s = %v, want 0", k, g)
			}
		}
		if diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin /metrics:%s", diff)
		}
		time.Sleep(20 * time.Millisecond) // polling a scrape; nothing to wait on
	}

	// The user service serves the same registry beside its API.
	got := scrapeURL(t, "http://"+s.UserAddr+"/metrics")
	if v := got[`herald_broker_published_total{topic="user.registered"}`]; v != n {
		t.Fatalf("user service /metrics: published %v, want %d", v, n)
	}
}

func scrapeURL(t *testing.T, url string) map[string]float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	got, err := metrics.ParseText(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
