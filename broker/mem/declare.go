package mem

import (
	"context"
	"fmt"

	"github.com/herald-dev/herald/broker"
)

var _ broker.GroupDeclarer = (*Broker)(nil)

// DeclareGroup makes the queue group group on topic, as a first Subscribe
// with [broker.Queue] would, without a member: from now on it keeps the
// topic's messages until a member joins. A group that exists is left as it
// is. It implements [broker.GroupDeclarer].
func (b *Broker) DeclareGroup(ctx context.Context, topic, group string) error {
	if err := broker.ValidateGroup(topic, group); err != nil {
		return fmt.Errorf("mem: declare group %q on %q: %w", group, topic, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: declare group %q on %q: %w", group, topic, err)
	}
	if b.closed.Load() {
		return fmt.Errorf("mem: declare group %q on %q: %w", group, topic, broker.ErrClosed)
	}
	b.bus.join(topic, group)
	return nil
}
