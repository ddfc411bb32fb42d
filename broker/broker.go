package broker

import "context"

// Broker publishes messages to topics and delivers them to subscribers.
//
// A Broker is safe for concurrent use by multiple goroutines.
type Broker interface {
	// Publish sends m to topic. It returns nil only once the backend has
	// durably accepted the message. If m.ID is empty, Publish sets it to a new
	// time-sortable ID (see [NewID]). Publish does not keep m after it returns.
	//
	// IDs identify events: a backend may drop a message published with the
	// ID of one it accepted recently as a duplicate (and return nil), even if
	// the bodies differ. That is what makes re-publishing after a doubtful
	// failure safe.
	Publish(ctx context.Context, topic string, m *Message, opts ...PublishOption) error

	// Subscribe starts delivering the messages of topic to h until the
	// subscription is unsubscribed or the broker closed. ctx bounds the set-up
	// only, not the life of the subscription.
	Subscribe(ctx context.Context, topic string, h Handler, opts ...SubscribeOption) (Subscription, error)

	// Close stops every subscription (stop fetching, let in-flight handlers
	// finish, bounded by ctx) and releases the backend's resources. When ctx
	// ends first, it returns an error wrapping ctx.Err(). Calls after the
	// first return nil.
	Close(ctx context.Context) error
}

// Handler handles one delivered message. It returns nil to acknowledge the
// message, an error to have it delivered again later, or an error wrapped by
// [Permanent] to send it to the dead-letter topic at once.
//
// A Handler may be called concurrently, up to the subscription's
// [Concurrency].
type Handler func(ctx context.Context, m *Message) error

// Subscription is a live subscription returned by [Broker.Subscribe].
type Subscription interface {
	// Topic is the topic subscribed to.
	Topic() string
	// Queue is the queue group joined, or "" for a broadcast subscriber.
	Queue() string
	// Unsubscribe stops fetching, waits for in-flight handlers (bounded by
	// ctx: when it ends first, the error wraps ctx.Err()) and leaves. A
	// durable queue group keeps its messages for the members that join
	// later. Calls after the first return nil.
	Unsubscribe(ctx context.Context) error
}

// As reports whether b (or what it wraps) can expose a backend-specific type,
// and if so sets target to it. A backend that offers this escape hatch has a
// method As(any) bool; see each backend's documentation for the types.
func As(b any, target any) bool {
	a, ok := b.(interface{ As(any) bool })
	return ok && a.As(target)
}
