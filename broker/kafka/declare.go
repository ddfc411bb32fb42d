package kafka

import (
	"context"
	"fmt"

	"github.com/herald-dev/herald/broker"
)

var _ broker.GroupDeclarer = (*Broker)(nil)

// DeclareGroup prepares the queue group group on topic for its first
// member: it creates topic and the group's retry topic when they do not
// exist, as the group's first Subscribe would (same partitions,
// replication and configuration; topics that exist are left as they are).
//
// Kafka keeps a topic's records for the topic's retention whether or not
// any consumer group reads them, and a group that never committed starts
// at the beginning of the topic (as Subscribe describes), so every record
// published from now on, and those still retained from before, reach the
// group's first member. No offset is committed: the Kafka consumer group
// ("<group>~<topic>") appears with its first member, and a group that has
// committed keeps its offsets. It implements [broker.GroupDeclarer].
func (b *Broker) DeclareGroup(ctx context.Context, topic, group string) error {
	if err := broker.ValidateGroup(topic, group); err != nil {
		return fmt.Errorf("kafka: declare group %q on %q: %w", group, topic, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka: declare group %q on %q: %w", group, topic, err)
	}
	if b.isClosed() {
		return fmt.Errorf("kafka: declare group %q on %q: %w", group, topic, broker.ErrClosed)
	}
	if err := b.ensureTopics(ctx, topic, retryTopic(topic, group)); err != nil {
		return fmt.Errorf("kafka: declare group %q on %q: %w", group, topic, err)
	}
	return nil
}
