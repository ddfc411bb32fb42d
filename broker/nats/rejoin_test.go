package nats_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
)

// TestRejoinedGroupGetsNextMessageAtOnce: a member handles a message and
// leaves, the next message is published at once, and a new member of the
// same group joins: it must get that message at once — not after an AckWait
// because the server handed it to the pull request the departed member left
// open.
func TestRejoinedGroupGetsNextMessageAtOnce(t *testing.T) {
	srv := startServer(t)
	pub := open(t, srv)
	const rounds = 40
	publish(t, pub, "rejoin", &broker.Message{ID: "m-0"})
	for i := range rounds {
		b := open(t, srv) // each member on its own connection, which stays open
		got := make(collector, 4)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		sub, err := b.Subscribe(ctx, "rejoin", got.handler, broker.Queue("g"), broker.AckWait(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if m := got.next(t, 5*time.Second); m.ID != fmt.Sprint("m-", i) {
			t.Fatalf("round %d: got %s, want m-%d", i, m.ID, i)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("round %d: the message took %v to reach the new member", i, d)
		}
		if err := sub.Unsubscribe(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		publish(t, pub, "rejoin", &broker.Message{ID: fmt.Sprint("m-", i+1)})
	}
}
