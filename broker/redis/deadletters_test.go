package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
)

// Dead letters can be browsed without consuming them, and deleted by ID.
func TestDeadLetterBrowser(t *testing.T) {
	b := open(t, withPrefix())
	var dlb broker.DeadLetterBrowser = b
	if got, err := dlb.DeadLetters(ctx(t), "nothing.dlq", 0); err != nil || len(got) != 0 || got == nil {
		t.Errorf("DeadLetters of a topic never seen: %v, %v; want an empty slice", got, err)
	}
	if _, err := dlb.DeadLetters(ctx(t), "bad topic", 0); !errors.Is(err, broker.ErrBadTopic) {
		t.Errorf("DeadLetters of a bad topic: %v, want ErrBadTopic", err)
	}
	c := newCollector()
	subscribe(t, b, "browse", c.handler(func(context.Context, *broker.Message) error {
		return broker.Permanent(errors.New("no"))
	}), broker.Queue("g"))
	var ids []string
	for i := range 3 {
		m := &broker.Message{Header: broker.Header{"i": string(rune('a' + i))}, Body: []byte{byte(i)}}
		publish(t, b, "browse", m)
		ids = append(ids, m.ID)
	}
	c.wait(t, 3, 10*time.Second)
	var got []*broker.Message
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		var err error
		if got, err = dlb.DeadLetters(ctx(t), "browse.dlq", 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 3 {
		t.Fatalf("%d dead letters, want 3", len(got))
	}
	for i, m := range got {
		if m.ID != ids[i] || m.Topic != "browse.dlq" || m.Attempt != 0 || m.Body[0] != byte(i) ||
			m.Header["i"] != string(rune('a'+i)) || m.Header[broker.HeaderDeadLetterReason] == "" || m.PublishedAt.IsZero() {
			t.Errorf("dead letter %d: %+v", i, m)
		}
	}
	if one, err := dlb.DeadLetters(ctx(t), "browse.dlq", 1); err != nil || len(one) != 1 || one[0].ID != ids[0] {
		t.Errorf("DeadLetters with limit 1: %v, %v", one, err)
	}
	n, err := dlb.DeleteDeadLetters(ctx(t), "browse.dlq", []string{ids[1], "unknown"})
	if err != nil || n != 1 {
		t.Errorf("DeleteDeadLetters: %d, %v; want 1", n, err)
	}
	if left, err := dlb.DeadLetters(ctx(t), "browse.dlq", 0); err != nil || len(left) != 2 || left[0].ID != ids[0] || left[1].ID != ids[2] {
		t.Errorf("after deleting one: %v, %v", left, err)
	}
}
