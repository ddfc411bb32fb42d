package rabbitmq

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/herald-dev/herald/broker"
)

// QueueType is the type of the durable queues of queue groups.
type QueueType string

// The queue types [WithQueueType] takes.
const (
	// Quorum queues (the default) are replicated, fsync before confirming,
	// and count deliveries (RabbitMQ 3.8 or later).
	Quorum QueueType = "quorum"
	// Classic queues are lighter and single-node.
	Classic QueueType = "classic"
)

// Defaults of [New].
const (
	// DefaultPrefetch is the QoS prefetch count of a subscription (at least
	// twice its Concurrency): how many deliveries the server sends it ahead
	// of its acknowledgements. Quorum queues settle acknowledgements through
	// their Raft log, so a small window starves the consumer; a large one
	// keeps messages from the other members of a queue group when handlers
	// are slow, and the messages prefetched but not handled when a member
	// leaves go back to the queue with their delivery counted.
	DefaultPrefetch = 256
	// DefaultPublishChannels is how many channels, in confirm mode, the
	// broker publishes on.
	DefaultPublishChannels = 4
	// DefaultMaxPending bounds the messages of one PublishBatch awaiting
	// their confirm at once.
	DefaultMaxPending = 2048
	// DefaultPublishTimeout bounds a Publish or PublishBatch whose context
	// has no deadline, retries included.
	DefaultPublishTimeout = 30 * time.Second
	// DefaultMaxMessageSize is RabbitMQ's default max_message_size
	// (128 MiB); Publish refuses larger messages with [broker.ErrTooLarge]
	// instead of having the server close the channel.
	DefaultMaxMessageSize = 128 << 20
	// DefaultHeartbeat is the AMQP heartbeat interval: a dead connection is
	// noticed within about twice this.
	DefaultHeartbeat = 10 * time.Second
)

type config struct {
	exchange       string
	queueType      QueueType
	queueExpiry    time.Duration
	prefetch       int
	pubChannels    int
	maxPending     int
	publishTimeout time.Duration
	maxSize        int
	heartbeat      time.Duration
	tls            *tls.Config
	logger         *slog.Logger
}

func defaults() config {
	return config{
		exchange:       DefaultExchange,
		queueType:      Quorum,
		prefetch:       DefaultPrefetch,
		pubChannels:    DefaultPublishChannels,
		maxPending:     DefaultMaxPending,
		publishTimeout: DefaultPublishTimeout,
		maxSize:        DefaultMaxMessageSize,
		heartbeat:      DefaultHeartbeat,
		logger:         slog.New(slog.DiscardHandler),
	}
}

// Option configures [New].
type Option func(*config) error

func invalidOption(format string, args ...any) error {
	return fmt.Errorf("rabbitmq: %w: "+format, append([]any{broker.ErrInvalidOption}, args...)...)
}

// WithExchange sets the topic exchange the broker publishes to and binds its
// queues to, [DefaultExchange] by default; it also prefixes the names of the
// queues the broker declares. It is one token of letters, digits, '-' and
// '_'. Brokers that talk to each other must use the same exchange.
func WithExchange(name string) Option {
	return func(c *config) error {
		if err := broker.ValidateQueue(name); err != nil {
			return invalidOption("exchange: %v", err)
		}
		c.exchange = name
		return nil
	}
}

// WithQueueType sets the type of the queues of queue groups (and of the
// dead-letter queue): [Quorum] (the default) or [Classic]. Retry queues are
// classic either way (see the package documentation). A queue that exists
// already keeps its type (a warning is logged when it differs).
func WithQueueType(t QueueType) Option {
	return func(c *config) error {
		if t != Quorum && t != Classic {
			return invalidOption("queue type %q (want %q or %q)", t, Quorum, Classic)
		}
		c.queueType = t
		return nil
	}
}

// WithQueueExpiry makes the server delete a queue group's queues, and the
// dead-letter queue, once they have had no consumer for d (x-expires), with
// the messages in them. 0, the default, keeps them until deleted by hand.
// Meant for short-lived groups and tests.
func WithQueueExpiry(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 || (d > 0 && d < time.Second) {
			return invalidOption("queue expiry must be 0 or >= 1s, not %v", d)
		}
		c.queueExpiry = d
		return nil
	}
}

// WithPrefetch sets the QoS prefetch count of a subscription
// ([DefaultPrefetch] by default; see there). A subscription's is at least
// twice its Concurrency. For slow handlers in a group of several members
// (a mailer, say), set it near Concurrency: RabbitMQ spreads a backlog over
// the members' prefetch windows, so a slow member with a large window sits
// on its share while the others are idle. The per-consumer window is fixed
// when the consumer starts, so it cannot follow the handlers' pace.
func WithPrefetch(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 65535 {
			return invalidOption("prefetch must be in [1, 65535], not %d", n)
		}
		c.prefetch = n
		return nil
	}
}

// WithPublishChannels sets how many channels the broker publishes on
// ([DefaultPublishChannels] by default); concurrent publishes are spread
// over them.
func WithPublishChannels(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 1024 {
			return invalidOption("publish channels must be in [1, 1024], not %d", n)
		}
		c.pubChannels = n
		return nil
	}
}

// WithMaxPending bounds how many messages of one [Broker.PublishBatch] await
// their confirm at once ([DefaultMaxPending] by default).
func WithMaxPending(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return invalidOption("max pending must be >= 1, not %d", n)
		}
		c.maxPending = n
		return nil
	}
}

// WithPublishTimeout bounds a publish whose context has no deadline
// ([DefaultPublishTimeout] by default). Publish retries while the server is
// unreachable, up to this bound.
func WithPublishTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalidOption("publish timeout must be > 0, not %v", d)
		}
		c.publishTimeout = d
		return nil
	}
}

// WithMaxMessageSize sets the largest message Publish accepts, body and
// headers ([DefaultMaxMessageSize] by default). Set it to the server's
// max_message_size when that is lower.
func WithMaxMessageSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return invalidOption("max message size must be >= 1, not %d", n)
		}
		c.maxSize = n
		return nil
	}
}

// WithHeartbeat sets the AMQP heartbeat interval ([DefaultHeartbeat] by
// default).
func WithHeartbeat(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return invalidOption("heartbeat must be >= 1s, not %v", d)
		}
		c.heartbeat = d
		return nil
	}
}

// WithTLS sets the TLS configuration of "amqps://" connections.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil {
			return invalidOption("nil TLS configuration")
		}
		c.tls = cfg
		return nil
	}
}

// WithLogger sets the logger of the broker's warnings (connection lost and
// regained, acknowledgements that could not be sent…); the default discards
// them.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return invalidOption("nil logger")
		}
		c.logger = l
		return nil
	}
}
