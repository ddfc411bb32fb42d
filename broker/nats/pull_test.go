package nats_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/nats-io/nats.go/jetstream"
)

// TestLeavingMemberGivesBackItsPrefetch: a member leaves while messages
// stream to it. What it had pulled but not handled goes back to the group
// at once: the next member gets every message well within the AckWait.
// (TestUnsubscribeLeavesPullInbox makes sure of a message still on its way.)
func TestLeavingMemberGivesBackItsPrefetch(t *testing.T) {
	srv := startServer(t)
	pub := open(t, srv)
	const n = 400
	var ids []string
	ms := make([]*broker.Message, n)
	for i := range ms {
		ms[i] = &broker.Message{ID: fmt.Sprint("s-", i)}
		ids = append(ids, ms[i].ID)
	}
	if err := pub.PublishBatch(ctxT(t, wait), "stream", ms); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	seen := map[string]bool{}
	record := func(m *broker.Message) int {
		mu.Lock()
		defer mu.Unlock()
		seen[m.ID] = true
		return len(seen)
	}
	leave := make(chan struct{})
	var once sync.Once
	first := func(_ context.Context, m *broker.Message) error {
		if record(m) >= 50 {
			once.Do(func() { close(leave) })
		}
		return nil
	}
	long := broker.AckWait(time.Minute)
	a := open(t, srv)
	sub, err := a.Subscribe(ctxT(t, wait), "stream", first, broker.Queue("g"), long)
	if err != nil {
		t.Fatal(err)
	}
	<-leave
	if err := sub.Unsubscribe(ctxT(t, wait)); err != nil {
		t.Fatal(err)
	}

	all := make(chan struct{})
	var allOnce sync.Once
	next := func(_ context.Context, m *broker.Message) error {
		if record(m) == n {
			allOnce.Do(func() { close(all) })
		}
		return nil
	}
	subscribe(t, open(t, srv), "stream", next, broker.Queue("g"), long)
	select {
	case <-all:
	case <-time.After(15 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		var missing []string
		for _, id := range ids {
			if !seen[id] {
				missing = append(missing, id)
			}
		}
		t.Fatalf("%d of %d messages missing after the first member left (held until their AckWait?): %v", len(missing), n, missing)
	}
}

// TestConsumerPullLimitsFollowed: a queue group's consumer that limits the
// batch and the expiry of pull requests (MaxRequestBatch,
// MaxRequestExpires, set by an operator) refuses the broker's usual pulls
// with a 409; the subscriber learns the limits and keeps delivering.
func TestConsumerPullLimitsFollowed(t *testing.T) {
	srv := startServer(t)
	b := open(t, srv)
	ctx := ctxT(t, wait)
	if err := b.DeclareGroup(ctx, "limits", "g"); err != nil {
		t.Fatal(err)
	}
	var js jetstream.JetStream
	if !broker.As(b, &js) {
		t.Fatal("As(*jetstream.JetStream) = false")
	}
	cons, err := js.Consumer(ctx, "herald~limits", "g")
	if err != nil {
		t.Fatal(err)
	}
	cfg := cons.CachedInfo().Config
	cfg.MaxRequestBatch, cfg.MaxRequestExpires = 3, 2*time.Second
	if _, err := js.UpdateConsumer(ctx, "herald~limits", cfg); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		publish(t, b, "limits", &broker.Message{ID: fmt.Sprint("l-", i)})
	}
	got := make(collector, n)
	subscribe(t, b, "limits", got.handler, broker.Queue("g"), broker.Concurrency(4))
	seen := map[string]bool{}
	for len(seen) < n {
		seen[got.next(t, wait).ID] = true
	}
	info, err := js.Consumer(ctx, "herald~limits", "g")
	if err != nil {
		t.Fatal(err)
	}
	if c := info.CachedInfo().Config; c.MaxRequestBatch != 3 || c.MaxRequestExpires != 2*time.Second {
		t.Errorf("the subscriber changed the consumer's limits: MaxRequestBatch %d, MaxRequestExpires %v", c.MaxRequestBatch, c.MaxRequestExpires)
	}
}
