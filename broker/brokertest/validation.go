package brokertest

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/herald-dev/herald/broker"
)

// testBadNames: Publish and Subscribe refuse invalid topic, queue group and
// dead-letter topic names with errors wrapping ErrBadTopic, and accept names
// at the length limits.
func testBadNames(e *env) {
	c := e.client()
	ctx, cancel := e.ctx()
	defer cancel()
	nop := func(context.Context, *broker.Message) error { return nil }
	good := e.topic("names")
	badTopics := []string{
		"", ".", "a.", ".a", "a..b", "a b", "a.*", "a.>", "*", ">", "a/b", "a:b", "a\x00b", "a\nb", "é",
		strings.Repeat("t", broker.MaxTopicLength+1),
	}
	for _, topic := range badTopics {
		if err := c.Publish(ctx, topic, &broker.Message{Body: []byte("x")}); !errors.Is(err, broker.ErrBadTopic) {
			e.Errorf("Publish to topic %q: %v, want ErrBadTopic", topic, err)
		}
		sub, err := c.Subscribe(ctx, topic, nop)
		if !errors.Is(err, broker.ErrBadTopic) {
			e.Errorf("Subscribe to topic %q: %v, want ErrBadTopic", topic, err)
		}
		e.drop(sub)
		if topic == "" {
			continue // DeadLetterTo("") is tested as an option below
		}
		sub, err = c.Subscribe(ctx, good, nop, broker.DeadLetterTo(topic))
		if !errors.Is(err, broker.ErrBadTopic) {
			e.Errorf("Subscribe with DeadLetterTo(%q): %v, want ErrBadTopic", topic, err)
		}
		e.drop(sub)
	}
	badQueues := []string{"", "a.b", "a b", "*", ">", "q/1", strings.Repeat("q", broker.MaxQueueLength+1)}
	for _, q := range badQueues {
		sub, err := c.Subscribe(ctx, good, nop, broker.Queue(q))
		if !errors.Is(err, broker.ErrBadTopic) {
			e.Errorf("Subscribe with Queue(%q): %v, want ErrBadTopic", q, err)
		}
		e.drop(sub)
	}

	// The longest names are valid and work end to end.
	pub := e.client()
	long := good + "." + strings.Repeat("x", broker.MaxTopicLength-len(good)-1)
	longQ := e.queue("")
	longQ += strings.Repeat("q", broker.MaxQueueLength-len(longQ))
	r := newRecorder()
	e.subscribe(c, long, r.handler(0, nil), broker.Queue(longQ))
	m := &broker.Message{Body: []byte("long names")}
	e.publish(pub, long, m)
	e.waitIDs(r, []string{m.ID}, "a message on a topic of the maximum length")
}

// testInvalidOptions: invalid options, a nil handler and a nil message are
// refused with errors wrapping ErrInvalidOption.
func testInvalidOptions(e *env) {
	c := e.client()
	ctx, cancel := e.ctx()
	defer cancel()
	topic := e.topic("options")
	nop := func(context.Context, *broker.Message) error { return nil }
	cases := []struct {
		name string
		h    broker.Handler
		opt  broker.SubscribeOption
	}{
		{"Concurrency(0)", nop, broker.Concurrency(0)},
		{"Concurrency(-1)", nop, broker.Concurrency(-1)},
		{"MaxAttempts(0)", nop, broker.MaxAttempts(0)},
		{"AckWait(0)", nop, broker.AckWait(0)},
		{"AckWait(-1s)", nop, broker.AckWait(-1e9)},
		{"negative backoff", nop, broker.RetryBackoff(broker.Backoff{Initial: -1})},
		{"backoff max below initial", nop, broker.RetryBackoff(broker.Backoff{Initial: 2e9, Max: 1e9})},
		{"backoff multiplier below 1", nop, broker.RetryBackoff(broker.Backoff{Initial: 1e6, Multiplier: 0.5})},
		{"backoff jitter above 1", nop, broker.RetryBackoff(broker.Backoff{Initial: 1e6, Jitter: 1.5})},
		{"WithLogger(nil)", nop, broker.WithLogger((*slog.Logger)(nil))},
		{"DeadLetterTo the subscribed topic", nop, broker.DeadLetterTo(topic)},
		{"nil handler", nil, broker.Concurrency(1)},
	}
	for _, tc := range cases {
		sub, err := c.Subscribe(ctx, topic, tc.h, tc.opt)
		if !errors.Is(err, broker.ErrInvalidOption) {
			e.Errorf("Subscribe with %s: %v, want ErrInvalidOption", tc.name, err)
		}
		e.drop(sub)
	}
	if err := c.Publish(ctx, topic, nil); !errors.Is(err, broker.ErrInvalidOption) {
		e.Errorf("Publish of a nil message: %v, want ErrInvalidOption", err)
	}
	long := broker.Key(strings.Repeat("k", 1025))
	if err := c.Publish(ctx, topic, &broker.Message{}, long); !errors.Is(err, broker.ErrInvalidOption) {
		e.Errorf("Publish with a 1025-byte Key: %v, want ErrInvalidOption", err)
	}
}

// drop unsubscribes a subscription that should not have been made.
func (e *env) drop(sub broker.Subscription) {
	if sub == nil {
		return
	}
	e.Errorf("a Subscribe that failed returned a Subscription for %q", sub.Topic())
	ctx, cancel := e.ctx()
	defer cancel()
	_ = sub.Unsubscribe(ctx)
}
