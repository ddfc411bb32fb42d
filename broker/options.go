package broker

import (
	"log/slog"
	"time"
)

// Defaults applied by [NewSubscribeOptions] before the options.
const (
	DefaultConcurrency = 1
	DefaultMaxAttempts = 5
	DefaultAckWait     = 30 * time.Second
)

// DefaultBackoff is the redelivery backoff of a subscription that sets none.
var DefaultBackoff = Backoff{Initial: 100 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.2}

// PublishOptions is what the [PublishOption]s of one Publish call set.
type PublishOptions struct {
	// Key groups messages that must stay in order: backends that partition
	// (Kafka) or group (Pub/Sub ordering keys) use it; others ignore it.
	Key string
}

// PublishOption configures one Publish call.
type PublishOption func(*PublishOptions) error

// Key sets the ordering key of the message (see [PublishOptions.Key]).
func Key(key string) PublishOption {
	return func(o *PublishOptions) error {
		if len(key) > 1024 {
			return invalidOption("key is %d bytes, more than 1024", len(key))
		}
		o.Key = key
		return nil
	}
}

// NewPublishOptions validates topic and applies opts. Backends call it first
// in Publish so that every backend refuses the same inputs.
func NewPublishOptions(topic string, m *Message, opts ...PublishOption) (PublishOptions, error) {
	if err := ValidateTopic(topic); err != nil {
		return PublishOptions{}, err
	}
	if m == nil {
		return PublishOptions{}, invalidOption("nil message")
	}
	if len(opts) == 0 {
		return PublishOptions{}, nil // the hot path: no options, no allocation
	}
	o := new(PublishOptions)
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return PublishOptions{}, err
		}
	}
	return *o, nil
}

// SubscribeOptions is what the [SubscribeOption]s of one Subscribe call set,
// over the defaults.
type SubscribeOptions struct {
	// Topic is the topic subscribed to.
	Topic string
	// Queue is the queue group, or "" for a broadcast subscriber.
	Queue string
	// Concurrency is how many handlers may run at once for this
	// subscription; backends tie their prefetch to it.
	Concurrency int
	// MaxAttempts is how many times a message is delivered before it goes to
	// the dead-letter topic.
	MaxAttempts int
	// Backoff spaces redeliveries.
	Backoff Backoff
	// DeadLetterTopic receives the messages that failed for good.
	DeadLetterTopic string
	// AckWait is how long the backend waits for a handler before it
	// considers the delivery lost and redelivers (backends that can tell
	// the engine a handler is still working extend it while it runs).
	AckWait time.Duration
	// Logger receives the subscription's warnings; never nil after
	// [NewSubscribeOptions].
	Logger *slog.Logger
}

// SubscribeOption configures one Subscribe call.
type SubscribeOption func(*SubscribeOptions) error

// Queue joins the queue group name: each message goes to one member of the
// group. Groups are durable where the backend persists. Members of one group
// should use the same [AckWait] and [MaxAttempts]: engines that keep them per
// group apply the last member's.
func Queue(name string) SubscribeOption {
	return func(o *SubscribeOptions) error {
		if err := ValidateQueue(name); err != nil {
			return err
		}
		o.Queue = name
		return nil
	}
}

// Concurrency lets up to n handlers run at once (n ≥ 1).
func Concurrency(n int) SubscribeOption {
	return func(o *SubscribeOptions) error {
		if n < 1 {
			return invalidOption("concurrency must be >= 1, not %d", n)
		}
		o.Concurrency = n
		return nil
	}
}

// MaxAttempts sets how many deliveries a message gets before it is dead
// lettered (n ≥ 1).
func MaxAttempts(n int) SubscribeOption {
	return func(o *SubscribeOptions) error {
		if n < 1 {
			return invalidOption("max attempts must be >= 1, not %d", n)
		}
		o.MaxAttempts = n
		return nil
	}
}

// RetryBackoff sets the backoff between redeliveries.
func RetryBackoff(b Backoff) SubscribeOption {
	return func(o *SubscribeOptions) error {
		if err := b.validate(); err != nil {
			return err
		}
		o.Backoff = b
		return nil
	}
}

// DeadLetterTo sets the dead-letter topic; the default is
// [DefaultDeadLetterTopic] of the subscribed topic.
func DeadLetterTo(topic string) SubscribeOption {
	return func(o *SubscribeOptions) error {
		if err := ValidateTopic(topic); err != nil {
			return err
		}
		o.DeadLetterTopic = topic
		return nil
	}
}

// AckWait sets how long a delivery may go unacknowledged before the backend
// redelivers it (d > 0).
func AckWait(d time.Duration) SubscribeOption {
	return func(o *SubscribeOptions) error {
		if d <= 0 {
			return invalidOption("ack wait must be > 0, not %v", d)
		}
		o.AckWait = d
		return nil
	}
}

// WithLogger sets the logger of the subscription's warnings.
func WithLogger(l *slog.Logger) SubscribeOption {
	return func(o *SubscribeOptions) error {
		if l == nil {
			return invalidOption("nil logger")
		}
		o.Logger = l
		return nil
	}
}

// NewSubscribeOptions validates topic and h, applies the defaults and then
// opts. Backends call it first in Subscribe so that every backend refuses the
// same inputs and applies the same defaults.
func NewSubscribeOptions(topic string, h Handler, opts ...SubscribeOption) (*SubscribeOptions, error) {
	if err := ValidateTopic(topic); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, invalidOption("nil handler")
	}
	o := &SubscribeOptions{
		Topic:       topic,
		Concurrency: DefaultConcurrency,
		MaxAttempts: DefaultMaxAttempts,
		Backoff:     DefaultBackoff,
		AckWait:     DefaultAckWait,
		Logger:      slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.DeadLetterTopic == "" {
		o.DeadLetterTopic = DefaultDeadLetterTopic(topic)
	}
	if o.DeadLetterTopic == topic {
		return nil, invalidOption("dead-letter topic %q is the subscribed topic", topic)
	}
	return o, nil
}
