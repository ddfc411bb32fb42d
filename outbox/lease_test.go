package outbox

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/internal/dbtest"
)

// TestLeaseExpiry: rows claimed by a relay that died are left alone until
// its lease runs out, then published by another relay.
func TestLeaseExpiry(t *testing.T) {
	dbtest.Run(t, []string{Table}, func(t *testing.T, url string) {
		ctx := context.Background()
		g := dbtest.Open(t, url)
		if err := Migrate(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := Add(g, "user.registered", &broker.Message{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		b := mem.New()
		var got atomic.Int32
		sub, err := b.Subscribe(ctx, "user.registered", func(context.Context, *broker.Message) error {
			got.Add(1)
			return nil
		}, broker.Queue("test"))
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe(ctx)

		const lease = 1500 * time.Millisecond
		dead, err := NewRelay(g, b, WithLease(lease), WithPublishTimeout(lease/2))
		if err != nil {
			t.Fatal(err)
		}
		rows, _, err := dead.claim(ctx) // claims, then "dies" before publishing
		if err != nil || len(rows) != 1 {
			t.Fatalf("claim = %d rows, %v", len(rows), err)
		}
		claimed := time.Now()

		live, err := NewRelay(dbtest.Open(t, url), b, WithPollInterval(20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if n, err := live.Once(ctx); n != 0 || err != nil {
			t.Fatalf("Once on a leased row = %d, %v; want 0, nil", n, err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- live.Run(runCtx) }()
		defer func() { cancel(); <-done }()

		deadline := time.Now().Add(20 * time.Second)
		for got.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("row never published after its lease expired")
			}
			time.Sleep(5 * time.Millisecond) // polling, with a deadline
		}
		// Allow for the database's clock and time resolution (1 ms on MySQL).
		if waited := time.Since(claimed); waited < lease-50*time.Millisecond {
			t.Fatalf("published %v after the claim, before the %v lease ran out", waited, lease)
		}
	})
}
