package redis

import (
	"context"
	"fmt"

	"github.com/herald-dev/herald/broker"
)

var _ broker.GroupDeclarer = (*Broker)(nil)

// DeclareGroup creates the queue group group on topic as its first
// Subscribe would, without a member: the consumer group on the topic's
// stream, at the stream's start (XGROUP CREATE … 0 MKSTREAM, the stream
// made if missing), and on the group's redo stream. The group then holds
// every entry the stream has and gets from then on, until members read
// them; like a group created by Subscribe, it gets the entries still in
// the stream from before it existed too. A group that exists is left as it
// is (BUSYGROUP), where it has read to included. It retries while the
// server is unreachable, until ctx is done. It implements
// [broker.GroupDeclarer].
//
// [WithMaxLen] trims a stream whether or not its groups read the entries:
// a declared group without a member loses what the trimming removes.
func (b *Broker) DeclareGroup(ctx context.Context, topic, group string) error {
	if err := broker.ValidateGroup(topic, group); err != nil {
		return fmt.Errorf("redis: declare group %q on %q: %w", group, topic, err)
	}
	if b.isClosed() {
		return fmt.Errorf("redis: declare group %q on %q: %w", group, topic, broker.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis: declare group %q on %q: %w", group, topic, err)
	}
	if err := b.createGroup(ctx, topic, group, queueGroupStart); err != nil {
		return fmt.Errorf("redis: declare group %q on %q: %w", group, topic, err)
	}
	return nil
}
