package nats

import (
	"context"
	"fmt"

	"github.com/herald-dev/herald/broker"
)

var _ broker.GroupDeclarer = (*Broker)(nil)

// DeclareGroup creates the queue group group on topic before its first
// member joins: the topic's stream, and the group's durable consumer as the
// first [Broker.Subscribe] with [broker.Queue] and default options would
// create it (DeliverAll, [broker.DefaultAckWait], [broker.DefaultMaxAttempts]).
// From then on the stream keeps the topic's messages for the group, as far
// back as its max age, whoever publishes them. A consumer that exists is
// left as it is; a member that joins later applies its own options, as when
// it joins an existing group. It implements [broker.GroupDeclarer].
func (b *Broker) DeclareGroup(ctx context.Context, topic, group string) error {
	if err := broker.ValidateGroup(topic, group); err != nil {
		return fmt.Errorf("nats: declare group %q on %q: %w", group, topic, err)
	}
	if b.isClosed() {
		return fmt.Errorf("nats: declare group %q on %q: %w", group, topic, broker.ErrClosed)
	}
	o, err := broker.DeclaredGroupOptions(topic, group)
	if err != nil {
		return fmt.Errorf("nats: declare group %q on %q: %w", group, topic, err)
	}
	stream := streamName(b.cfg.prefix, topic)
	if err := b.ensureStream(ctx, topic); err != nil {
		return fmt.Errorf("nats: declare group %q on %q: stream %s: %w", group, topic, stream, classify(err))
	}
	if _, err := b.durable(ctx, stream, newConsumerConfig(subject(b.cfg.prefix, topic), o)); err != nil {
		return fmt.Errorf("nats: declare group %q on %q: consumer: %w", group, topic, classify(err))
	}
	return nil
}
