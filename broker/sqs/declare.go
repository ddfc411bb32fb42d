package sqs

import (
	"context"
	"fmt"

	"github.com/herald-dev/herald/broker"
)

var _ broker.GroupDeclarer = (*Broker)(nil)

// DeclareGroup makes the queue group group on topic as its first Subscribe
// would: the SNS topic, the group's queue ([WithRetention]) with its policy
// letting the topic send to it, and the topic's subscription to the queue
// (raw message delivery), reused when it exists. SNS copies a message only
// into the queues subscribed to the topic when it is published: from the
// moment DeclareGroup returns, the queue keeps every message published to
// topic, for the retention, until a member receives it.
//
// With [WithRedrive], a queue without a redrive policy gets the one
// Subscribe sets for the default [broker.DefaultMaxAttempts]; a member that
// joins sets its own, as Subscribe always does. A queue that exists keeps
// its redrive policy and retention. It implements [broker.GroupDeclarer].
func (b *Broker) DeclareGroup(ctx context.Context, topic, group string) error {
	if err := broker.ValidateGroup(topic, group); err != nil {
		return fmt.Errorf("sqs: declare group %q on %q: %w", group, topic, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqs: declare group %q on %q: %w", group, topic, err)
	}
	if b.isClosed() {
		return fmt.Errorf("sqs: declare group %q on %q: %w", group, topic, broker.ErrClosed)
	}
	_, _, err := b.setUpQueue(ctx, queueSetup{
		topic: topic, queue: b.groupQueueName(topic, group), group: true,
		maxAttempts: broker.DefaultMaxAttempts, keepRedrive: true,
	})
	if err != nil {
		return fmt.Errorf("sqs: declare group %q on %q: %w", group, topic, err)
	}
	return nil
}
