package broker

import (
	"context"
	"errors"
	"fmt"
)

// GroupDeclarer is implemented by backends that can create a queue group
// before its first member joins. Use [DeclareGroup].
//
// A program that publishes events declares the groups that consume them at
// start (Herald's user service declares the email service's group), so that
// an event published before the consumer's first Subscribe is kept for it:
// without a declaration, a group exists only once a member has joined it
// once, and on engines that route by binding (a RabbitMQ topic exchange, an
// SNS topic, a Pub/Sub topic) a message published while no queue was
// bound for the group is dropped by the engine.
//
// Implementations are safe for concurrent use.
type GroupDeclarer interface {
	// DeclareGroup makes the queue group group on topic exist: from the
	// moment it returns nil, every message published to topic is kept for
	// the group, durably where the backend persists, until a member joins
	// and handles it, as [Queue] describes. Declaring a group that exists
	// changes nothing, and its settings (those its members' options set,
	// such as [AckWait]) stay as they are; a member that joins later
	// applies its own, as when it joins an existing group. topic and group
	// are validated as by [ValidateTopic] and [ValidateQueue]. After the
	// broker's Close, the error wraps [ErrClosed].
	DeclareGroup(ctx context.Context, topic, group string) error
}

// DeclareGroup declares the queue group group on topic through b's
// [GroupDeclarer]. When b has none, it returns an error wrapping
// [errors.ErrUnsupported].
func DeclareGroup(ctx context.Context, b Broker, topic, group string) error {
	d, ok := b.(GroupDeclarer)
	if !ok {
		return fmt.Errorf("broker: declare group %q on %q: %T: %w", group, topic, b, errors.ErrUnsupported)
	}
	return d.DeclareGroup(ctx, topic, group)
}

// ValidateGroup checks the arguments of [GroupDeclarer.DeclareGroup]:
// backends call it first so that every backend refuses the same inputs.
func ValidateGroup(topic, group string) error {
	if err := ValidateTopic(topic); err != nil {
		return err
	}
	return ValidateQueue(group)
}

// DeclaredGroupOptions returns the options of a member of group on topic
// that sets none: the settings a [GroupDeclarer] gives a group it creates,
// so that a declared group is the one its first default member would have
// made. The options' handler is never called.
func DeclaredGroupOptions(topic, group string) (*SubscribeOptions, error) {
	return NewSubscribeOptions(topic, func(context.Context, *Message) error { return nil }, Queue(group))
}
