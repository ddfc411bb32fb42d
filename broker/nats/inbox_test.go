package nats

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/nats-io/nats.go"
)

// TestUnsubscribeLeavesPullInbox checks the mechanism that keeps a departed
// member from being handed messages. A message reaches a member's pull
// inbox after its pull loop stopped (on its way as the member leaves):
// Unsubscribe gives it back to JetStream at once, so the group's next member
// gets it without waiting for the AckWait; and once Unsubscribe returns, the
// server has no interest left in the inbox (a request to it finds no
// responders at once).
func TestUnsubscribeLeavesPullInbox(t *testing.T) {
	srv, err := natsserver.Start(natsserver.WithDataDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	connect := func() *Broker {
		b, err := New(ctx, srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close(context.Background()) })
		return b
	}
	b, next, pub := connect(), connect(), connect()
	other, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	long := broker.AckWait(time.Minute) // a message held until its AckWait fails the test
	nop := func(context.Context, *broker.Message) error { return nil }

	for round := range 5 {
		sub, err := b.Subscribe(ctx, "inbox", nop, broker.Queue("g"), long)
		if err != nil {
			t.Fatal(err)
		}
		s := sub.(*subscription)
		inbox := s.inbox.Subject
		waitFor(t, "the member's pull at the server", func() bool {
			info, err := b.js.Consumer(ctx, s.stream, "g")
			return err == nil && info.CachedInfo().NumWaiting > 0
		})

		// The loop stops with its pull still at the server, which hands
		// it the next message.
		s.stop()
		<-s.done
		id := fmt.Sprint("late-", round)
		if err := pub.Publish(ctx, "inbox", &broker.Message{ID: id}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the message at the stopped member's inbox", func() bool { return len(s.replies) > 0 })

		if err := sub.Unsubscribe(ctx); err != nil {
			t.Fatal(err)
		}
		// No sleep, no retry: the server must already have seen the inbox go.
		if _, err := other.Request(inbox, nil, 5*time.Second); !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("round %d: a request to the departed member's pull inbox: %v, want no responders", round, err)
		}

		got := make(chan *broker.Message, 1)
		nsub, err := next.Subscribe(ctx, "inbox", func(_ context.Context, m *broker.Message) error {
			got <- m.Clone()
			return nil
		}, broker.Queue("g"), long)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m.ID != id || m.Attempt != 2 {
				t.Errorf("round %d: the next member got %s attempt %d, want %s attempt 2 (given back once)", round, m.ID, m.Attempt, id)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the message that reached the departed member did not come back to the group", round)
		}
		if err := nsub.Unsubscribe(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor waits up to 10 s for cond, or fails the test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
