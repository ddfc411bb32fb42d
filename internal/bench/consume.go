package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald/broker"
)

// Consume measures consumption alone on a persistent backend, the way an
// engine's raw consume baseline is measured: a queue group is created, left
// with no member while c.Messages messages are published, then joined, and
// the time until it has handled and acknowledged all of them is what counts.
// It returns the publish rate of that publish-only phase and the consume
// rate, in messages per second.
func Consume(ctx context.Context, b broker.Broker, c Config) (publishPerSec, consumePerSec float64, err error) {
	if err := c.normalise(); err != nil {
		return 0, 0, err
	}
	topic := "bench." + broker.NewID()[24:]
	var delivered atomic.Int64
	done := make(chan struct{})
	h := func(context.Context, *broker.Message) error {
		if delivered.Add(1) == int64(c.Messages) {
			close(done)
		}
		return nil
	}
	opts := []broker.SubscribeOption{broker.Queue("bench"), broker.Concurrency(c.Concurrency)}
	// Create the durable group, then leave it so messages wait for it.
	sub, err := b.Subscribe(ctx, topic, func(context.Context, *broker.Message) error { return nil }, opts...)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: subscribe: %w", err)
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		return 0, 0, err
	}
	pubStart := time.Now()
	if failed := publishAll(ctx, b, topic, c); failed > 0 {
		return 0, 0, fmt.Errorf("bench: %d messages could not be published", failed)
	}
	publishPerSec = rate(c.Messages, time.Since(pubStart))
	start := time.Now()
	sub, err = b.Subscribe(ctx, topic, h, opts...)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: subscribe: %w", err)
	}
	defer sub.Unsubscribe(context.WithoutCancel(ctx))
	select {
	case <-done:
	case <-time.After(c.Idle + time.Duration(c.Messages)*time.Millisecond):
		return 0, 0, fmt.Errorf("bench: consumed %d of %d messages before giving up", delivered.Load(), c.Messages)
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	return publishPerSec, rate(c.Messages, time.Since(start)), nil
}
