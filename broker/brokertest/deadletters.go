package brokertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
)

// CheckDeadLetterBrowser checks a backend's [broker.DeadLetterBrowser]
// (an optional capability, so not part of [Run]): dead letters are listed
// in order without being consumed, limited, and deleted by ID. b must
// implement the capability; ctx bounds the check.
func CheckDeadLetterBrowser(ctx context.Context, t *testing.T, b broker.Broker) {
	t.Helper()
	dl, ok := b.(broker.DeadLetterBrowser)
	if !ok {
		t.Fatalf("%T is not a broker.DeadLetterBrowser", b)
	}
	const topic = "dlt.orders"
	dlq := broker.DefaultDeadLetterTopic(topic)
	handled := make(chan string, 10)
	sub, err := b.Subscribe(ctx, topic, func(_ context.Context, m *broker.Message) error {
		if string(m.Body) != "ok" {
			return broker.Permanent(errors.New("poison " + string(m.Body)))
		}
		handled <- m.ID
		return nil
	}, broker.Queue("g"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe(ctx)
	for _, body := range []string{"bad1", "ok", "bad2"} {
		if err := b.Publish(ctx, topic, &broker.Message{ID: body, Body: []byte(body), Header: broker.Header{"k": body}}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case id := <-handled:
		if id != "ok" {
			t.Fatalf("handled %q", id)
		}
	case <-ctx.Done():
		t.Fatal("the good message was not handled")
	}
	var got []*broker.Message
	for len(got) < 2 {
		got, err = dl.DeadLetters(ctx, dlq, 0)
		if err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatalf("dead letters: %d, want 2", len(got))
		}
		time.Sleep(10 * time.Millisecond) // polling a store; nothing to wait on
	}
	if len(got) != 2 || got[0].ID != "bad1" || got[1].ID != "bad2" {
		t.Fatalf("dead letters %v, want bad1 and bad2 in order", messageIDs(got))
	}
	for _, m := range got {
		if m.Topic != dlq || string(m.Body) != m.ID || m.Header.Get("k") != m.ID ||
			m.Header.Get(broker.HeaderDeadLetterTopic) != topic || m.Header.Get(broker.HeaderDeadLetterQueue) != "g" ||
			m.Header.Get(broker.HeaderDeadLetterReason) != "permanent: poison "+m.ID || m.PublishedAt.IsZero() || m.Attempt != 0 {
			t.Errorf("dead letter %+v", m)
		}
	}
	// Browsing again finds them all again, in order: browsing loses nothing.
	if again, err := dl.DeadLetters(ctx, dlq, 0); err != nil || len(again) != 2 || again[0].ID != "bad1" || again[1].ID != "bad2" {
		t.Fatalf("second browse: %v, %v", messageIDs(again), err)
	}
	if got, err := dl.DeadLetters(ctx, dlq, 1); err != nil || len(got) != 1 || got[0].ID != "bad1" {
		t.Fatalf("limit 1: %v, %v", messageIDs(got), err)
	}
	if got, err := dl.DeadLetters(ctx, "dlt.nothing.dlq", 0); err != nil || len(got) != 0 || got == nil {
		t.Fatalf("unknown topic: %v, %v; want an empty slice", messageIDs(got), err)
	}
	if _, err := dl.DeadLetters(ctx, "bad topic", 0); !errors.Is(err, broker.ErrBadTopic) {
		t.Fatalf("bad topic: %v, want ErrBadTopic", err)
	}
	n, err := dl.DeleteDeadLetters(ctx, dlq, []string{"bad1", "absent"})
	if err != nil || n != 1 {
		t.Fatalf("delete: %d, %v; want 1", n, err)
	}
	got, err = dl.DeadLetters(ctx, dlq, 0)
	if err != nil || len(got) != 1 || got[0].ID != "bad2" {
		t.Fatalf("after delete: %v, %v", messageIDs(got), err)
	}
	// Replay: publish first, then delete; the replay is handled.
	replayTopic, rm := broker.ReplayOf(got[0])
	rm.Body = []byte("ok")
	if err := b.Publish(ctx, replayTopic, rm); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-handled:
		if id != "bad2" {
			t.Fatalf("replay handled %q", id)
		}
	case <-ctx.Done():
		t.Fatal("the replay was not handled")
	}
	if n, err := dl.DeleteDeadLetters(ctx, dlq, []string{"bad2"}); err != nil || n != 1 {
		t.Fatalf("delete replayed: %d, %v", n, err)
	}
	if got, err := dl.DeadLetters(ctx, dlq, 0); err != nil || len(got) != 0 {
		t.Fatalf("at the end: %v, %v", messageIDs(got), err)
	}
}

func messageIDs(ms []*broker.Message) []string {
	var s []string
	for _, m := range ms {
		s = append(s, m.ID)
	}
	return s
}
