package broker

import (
	"context"
	"errors"
	"sync"
)

// BatchPublisher is implemented by backends that can publish many messages
// with one wait for the engine's acknowledgements (JetStream async publish,
// pipelined publisher confirms, Kafka produce batches). It is an optional
// capability: use [PublishBatch], which falls back to concurrent Publish calls.
type BatchPublisher interface {
	// PublishBatch publishes ms to topic in order and returns nil only once
	// every message was durably accepted. On error some messages may have
	// been accepted: the caller publishes the batch again, and consumers,
	// which see the same IDs, deduplicate. IDs are set as by Publish.
	PublishBatch(ctx context.Context, topic string, ms []*Message, opts ...PublishOption) error
}

// PublishBatch publishes ms to topic through b's [BatchPublisher] when it has
// one, or else with up to 64 concurrent Publish calls. It returns nil only
// once every message was accepted; otherwise it returns the errors joined.
func PublishBatch(ctx context.Context, b Broker, topic string, ms []*Message, opts ...PublishOption) error {
	if bp, ok := b.(BatchPublisher); ok {
		return bp.PublishBatch(ctx, topic, ms, opts...)
	}
	for _, m := range ms {
		if m != nil && m.ID == "" {
			m.ID = NewID()
		}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 64)
	)
	for _, m := range ms {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := b.Publish(ctx, topic, m, opts...); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// UnsubscribeAll unsubscribes subs concurrently, each bounded by ctx, and
// returns their errors joined. Backends call it from Close, so that one slow
// subscription's drain does not wait behind another's.
func UnsubscribeAll[S Subscription](ctx context.Context, subs []S) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, s := range subs {
		wg.Go(func() {
			if err := s.Unsubscribe(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
