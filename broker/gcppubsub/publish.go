package gcppubsub

import (
	"context"
	"fmt"
	"strings"

	"cloud.google.com/go/pubsub/v2"
	"github.com/herald-dev/herald/broker"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Publish publishes m to topic, creating the Pub/Sub topic when it does not
// exist, and returns nil once Pub/Sub has stored it. The [broker.Key] option
// becomes the message's ordering key. The error wraps [broker.ErrTooLarge]
// for a message over [WithMaxMessageBytes] and [broker.ErrClosed] after
// Close.
func (b *Broker) Publish(ctx context.Context, topic string, m *broker.Message, opts ...broker.PublishOption) error {
	po, err := broker.NewPublishOptions(topic, m, opts...)
	if err != nil {
		return fmt.Errorf("gcppubsub: publish %q: %w", topic, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gcppubsub: publish %q: %w", topic, err)
	}
	if b.isClosed() {
		return fmt.Errorf("gcppubsub: publish %q: %w", topic, broker.ErrClosed)
	}
	if m.ID == "" {
		m.ID = broker.NewID()
	}
	if err := b.publish(ctx, topic, po.Key, []*broker.Message{m}); err != nil {
		return fmt.Errorf("gcppubsub: publish %q: %w", topic, err)
	}
	return nil
}

// PublishBatch publishes ms to topic, all at once, and returns nil once
// Pub/Sub has stored every one. It implements [broker.BatchPublisher].
func (b *Broker) PublishBatch(ctx context.Context, topic string, ms []*broker.Message, opts ...broker.PublishOption) error {
	var po broker.PublishOptions
	for _, m := range ms {
		var err error
		if po, err = broker.NewPublishOptions(topic, m, opts...); err != nil {
			return fmt.Errorf("gcppubsub: publish %q: %w", topic, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gcppubsub: publish %q: %w", topic, err)
	}
	if b.isClosed() {
		return fmt.Errorf("gcppubsub: publish %q: %w", topic, broker.ErrClosed)
	}
	for _, m := range ms {
		if m.ID == "" {
			m.ID = broker.NewID()
		}
	}
	if err := b.publish(ctx, topic, po.Key, ms); err != nil {
		return fmt.Errorf("gcppubsub: publish %q: %w", topic, err)
	}
	return nil
}

// publish publishes ms, whose IDs are set, and waits for every result. It
// does not check whether the broker is closed: dead letters still go out
// while Close waits for the handlers.
func (b *Broker) publish(ctx context.Context, topic, key string, ms []*broker.Message) error {
	id, err := b.topicID(topic)
	if err != nil {
		return err
	}
	msgs := make([]*pubsub.Message, len(ms))
	for i, m := range ms {
		attrs, err := encodeAttrs(m.Header, m.ID)
		if err != nil {
			return fmt.Errorf("%w: %w", broker.ErrTooLarge, err)
		}
		if n := len(m.Body) + attrsSize(attrs) + len(key); n > b.cfg.maxMessageBytes {
			return fmt.Errorf("%w: message of about %d bytes, more than %d", broker.ErrTooLarge, n, b.cfg.maxMessageBytes)
		}
		body := append(make([]byte, 0, len(m.Body)), m.Body...)
		msgs[i] = &pubsub.Message{Data: body, Attributes: attrs, OrderingKey: key}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.publishTimeout)
		defer cancel()
	}
	if err := b.ensureTopic(ctx, id); err != nil {
		return err
	}
	p := b.publisher(id)
	results := make([]*pubsub.PublishResult, len(msgs))
	for i, msg := range msgs {
		results[i] = p.Publish(ctx, msg)
	}
	var errs []error
	for _, r := range results {
		if _, err := r.Get(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	if key != "" {
		p.ResumePublish(key) // a failure pauses the ordering key
	}
	err = errs[0]
	if isTooLarge(err) {
		err = fmt.Errorf("%w: %w", broker.ErrTooLarge, err)
	}
	if len(errs) > 1 {
		return fmt.Errorf("%d of %d messages failed, first: %w", len(errs), len(msgs), err)
	}
	return err
}

// isTooLarge reports whether a publish error says the request was too big.
func isTooLarge(err error) bool {
	s, ok := status.FromError(err)
	return ok && (s.Code() == codes.InvalidArgument || s.Code() == codes.ResourceExhausted) &&
		(strings.Contains(s.Message(), "too large") || strings.Contains(s.Message(), "exceeds"))
}
