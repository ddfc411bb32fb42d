package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herald-dev/herald/broker"
)

var _ broker.GroupDeclarer = (*Broker)(nil)

// DeclareGroup declares the queue group group on topic as its first
// Subscribe would, without consuming: the group's durable queue
// (exchange:topic:group), with the arguments Subscribe gives it (the
// broker's queue type and [WithQueueExpiry]) and bound to topic, and the
// durable queue of [DeadLetterGroup] on the default dead-letter topic
// ([broker.DefaultDeadLetterTopic]). A topic exchange drops what no queue
// is bound to: from the moment DeclareGroup returns, the queue is bound and
// keeps every message published to topic for the group's first member.
//
// Because the arguments are Subscribe's, a later Subscribe of the group
// declares the same queue again without a PRECONDITION_FAILED. A queue that
// exists with other arguments (declared by a broker with another queue
// type) is left as it is, with a warning to [WithLogger], as Subscribe
// does. It retries while the server is unreachable, until ctx is done. It
// implements [broker.GroupDeclarer].
func (b *Broker) DeclareGroup(ctx context.Context, topic, group string) error {
	if err := b.declareGroup(ctx, topic, group); err != nil {
		return fmt.Errorf("rabbitmq: declare group %q on %q: %w", group, topic, err)
	}
	return nil
}

func (b *Broker) declareGroup(ctx context.Context, topic, group string) error {
	if err := broker.ValidateGroup(topic, group); err != nil {
		return err
	}
	if b.isClosed() {
		return broker.ErrClosed
	}
	dlt := broker.DefaultDeadLetterTopic(topic)
	qs := []queueSpec{b.groupSpec(topic, group), b.groupSpec(dlt, DeadLetterGroup)}
	warn := func(msg string, args ...any) {
		b.cfg.logger.Warn(msg, append(args, "topic", topic, "queue", group)...)
	}
	backoff := broker.Backoff{Initial: 50 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.2}
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		conn, err := b.sub.get(ctx)
		if errors.Is(err, errClosing) {
			return fmt.Errorf("%w: %w", broker.ErrClosed, err)
		}
		if err != nil {
			return err
		}
		err = b.declare(conn, warn, qs...)
		if err == nil || !transient(err) {
			return err
		}
		// The connection went away under the declaration: the connector
		// dials again; declaring again is harmless.
		t := time.NewTimer(backoff.Delay(n))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errors.Join(ctx.Err(), err)
		}
	}
}
