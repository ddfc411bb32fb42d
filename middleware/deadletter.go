package middleware

import (
	"context"
	"errors"
	"fmt"

	"github.com/herald-dev/herald/broker"
)

// Publisher is the part of a broker DeadLetter needs.
type Publisher interface {
	Publish(ctx context.Context, topic string, m *broker.Message, opts ...broker.PublishOption) error
}

// DeadLetter sends a message that failed for good to a dead-letter topic and
// acknowledges it, for brokers that cannot dead-letter natively. A message
// failed for good when its error is [broker.Permanent] or it has been
// attempted MaxAttempts times ([broker.Message.Attempt]). The dead letter is
// [broker.NewDeadLetter] of the message. When publishing it fails, the
// handler's error and the publish error are returned joined, so the message
// is nacked and nothing is lost.
type DeadLetter struct {
	// Publisher publishes the dead letters.
	Publisher Publisher
	// Topic is the dead-letter topic; "" means
	// [broker.DefaultDeadLetterTopic] of the message's topic.
	Topic string
	// Queue is the queue group recorded in the dead letter.
	Queue string
	// MaxAttempts is the number of attempts after which a message is dead;
	// 0 means [broker.DefaultMaxAttempts].
	MaxAttempts int
}

// Middleware returns the dead-lettering middleware.
func (d DeadLetter) Middleware(next broker.Handler) broker.Handler {
	maxAttempts := d.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = broker.DefaultMaxAttempts
	}
	return func(ctx context.Context, m *broker.Message) error {
		err := next(ctx, m)
		if err == nil || (!broker.IsPermanent(err) && m.Attempt < maxAttempts) {
			return err
		}
		topic := d.Topic
		if topic == "" {
			topic = broker.DefaultDeadLetterTopic(m.Topic)
		}
		reason := err
		if !broker.IsPermanent(err) {
			reason = fmt.Errorf("gave up after %d attempts: %w", m.Attempt, err)
		}
		dl := broker.NewDeadLetter(m, &broker.SubscribeOptions{Queue: d.Queue}, reason)
		if perr := d.Publisher.Publish(ctx, topic, dl); perr != nil {
			return errors.Join(err, fmt.Errorf("dead-letter to %q: %w", topic, perr))
		}
		return nil
	}
}
