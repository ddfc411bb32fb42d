package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/herald-dev/herald/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Publish produces m to topic, creating the topic when it does not exist,
// and returns nil once every in-sync replica has it (acks=all, through the
// idempotent producer). The record key is the [broker.Key] option, or the
// message ID when there is none. The error wraps [broker.ErrTooLarge] for a
// message over [WithMaxMessageBytes] and [broker.ErrClosed] after Close.
func (b *Broker) Publish(ctx context.Context, topic string, m *broker.Message, opts ...broker.PublishOption) error {
	po, err := broker.NewPublishOptions(topic, m, opts...)
	if err != nil {
		return fmt.Errorf("kafka: publish %q: %w", topic, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka: publish %q: %w", topic, err)
	}
	if b.isClosed() {
		return fmt.Errorf("kafka: publish %q: %w", topic, broker.ErrClosed)
	}
	if m.ID == "" {
		m.ID = broker.NewID()
	}
	if err := b.produce(ctx, topic, []*kgo.Record{newRecord(topic, po.Key, m)}); err != nil {
		return fmt.Errorf("kafka: publish %q: %w", topic, err)
	}
	return nil
}

// PublishBatch produces ms to topic, in order, all at once, and returns nil
// once every one is acknowledged. It implements [broker.BatchPublisher]. With
// no [broker.Key], messages are spread over partitions by ID, so their order
// holds per partition only.
func (b *Broker) PublishBatch(ctx context.Context, topic string, ms []*broker.Message, opts ...broker.PublishOption) error {
	var po broker.PublishOptions
	for _, m := range ms {
		var err error
		if po, err = broker.NewPublishOptions(topic, m, opts...); err != nil {
			return fmt.Errorf("kafka: publish %q: %w", topic, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka: publish %q: %w", topic, err)
	}
	if b.isClosed() {
		return fmt.Errorf("kafka: publish %q: %w", topic, broker.ErrClosed)
	}
	recs := make([]*kgo.Record, len(ms))
	for i, m := range ms {
		if m.ID == "" {
			m.ID = broker.NewID()
		}
		recs[i] = newRecord(topic, po.Key, m)
	}
	if err := b.produce(ctx, topic, recs); err != nil {
		return fmt.Errorf("kafka: publish %q: %w", topic, err)
	}
	return nil
}

// produce creates topic when needed, produces recs and waits for all their
// acknowledgements or for ctx. On ctx's end it returns at once; records
// already sent may still be stored.
func (b *Broker) produce(ctx context.Context, topic string, recs []*kgo.Record) error {
	for _, r := range recs {
		if recordSize(r) > int(b.cfg.maxMessageBytes) {
			return fmt.Errorf("%w: record of about %d bytes, more than %d", broker.ErrTooLarge, recordSize(r), b.cfg.maxMessageBytes)
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.publishTimeout)
		defer cancel()
	}
	if err := b.ensureTopics(ctx, topic); err != nil {
		return err
	}
	done := make(chan error, len(recs))
	for _, r := range recs {
		b.cl.Produce(ctx, r, func(_ *kgo.Record, err error) { done <- err })
	}
	var errs []error
	for range recs {
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if len(errs) > 0 {
		err := errs[0]
		if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
			err = fmt.Errorf("%w: %w", broker.ErrTooLarge, err)
		}
		if len(errs) > 1 {
			return fmt.Errorf("%d of %d records failed, first: %w", len(errs), len(recs), err)
		}
		return err
	}
	return nil
}
