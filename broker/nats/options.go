package nats

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of [New].
const (
	// DefaultMaxAge is how long a stream keeps a message (Limits retention):
	// a queue group that joins later, or a replay, can reach back this far.
	DefaultMaxAge = 7 * 24 * time.Hour
	// DefaultDuplicateWindow is how long JetStream remembers a message ID to
	// drop a re-publish of it (see [broker.Broker.Publish]).
	DefaultDuplicateWindow = 2 * time.Minute
	// DefaultMaxPending bounds the messages of [Broker.PublishBatch] in
	// flight at once (published, acknowledgement not yet received).
	DefaultMaxPending = 4096
	// DefaultPublishTimeout bounds a Publish, PublishBatch or dead-letter
	// publish whose context has no deadline, retries included.
	DefaultPublishTimeout = 30 * time.Second
	// DefaultPrefetch is the least a subscription prefetches (see
	// [WithPrefetch]); one with a higher Concurrency prefetches that many.
	DefaultPrefetch = 32
	// DefaultReplicas is how many copies of each stream the broker asks
	// JetStream for: one, all a single server can hold (see
	// [WithReplicas]).
	DefaultReplicas = 1
	// MaxReplicas is the most replicas JetStream allows a stream.
	MaxReplicas = 5
)

type config struct {
	conn           *nats.Conn
	natsOpts       []nats.Option
	prefix         string
	storage        jetstream.StorageType
	maxAge         time.Duration
	dupWindow      time.Duration
	maxPending     int
	publishTimeout time.Duration
	prefetch       int // -1: max(DefaultPrefetch, each subscription's Concurrency)
	replicas       int
	logger         *slog.Logger
	embedded       *natsserver.Server // started by OpenURL("nats://"), stopped by Close
}

func defaults() config {
	return config{
		prefix:         DefaultPrefix,
		storage:        jetstream.FileStorage,
		maxAge:         DefaultMaxAge,
		dupWindow:      DefaultDuplicateWindow,
		maxPending:     DefaultMaxPending,
		publishTimeout: DefaultPublishTimeout,
		prefetch:       -1,
		replicas:       DefaultReplicas,
		logger:         slog.New(slog.DiscardHandler),
	}
}

// Option configures [New].
type Option func(*config) error

func invalidOption(format string, args ...any) error {
	return fmt.Errorf("nats: %w: "+format, append([]any{broker.ErrInvalidOption}, args...)...)
}

// WithConn makes the broker use nc instead of dialling the URL given to
// [New] (which may then be ""). The broker does not own nc: Close leaves it
// open, and its reconnect settings are the caller's.
func WithConn(nc *nats.Conn) Option {
	return func(c *config) error {
		if nc == nil {
			return invalidOption("nil connection")
		}
		c.conn = nc
		return nil
	}
}

// WithNATSOptions adds options to the connection [New] dials (credentials,
// TLS, a name…). They come after Herald's own (reconnect forever with
// backoff, logging handlers), so they can override them.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(c *config) error {
		c.natsOpts = append(c.natsOpts, opts...)
		return nil
	}
}

// WithPrefix sets the namespace of the broker's subjects and streams,
// [DefaultPrefix] by default: topic "a.b" is subject prefix+".a.b" in stream
// prefix+"~a~b". It is one token of letters, digits, '-' and '_'. Brokers
// that talk to each other must use the same prefix.
func WithPrefix(prefix string) Option {
	return func(c *config) error {
		if err := broker.ValidateQueue(prefix); err != nil {
			return invalidOption("prefix: %v", err)
		}
		c.prefix = prefix
		return nil
	}
}

// WithMemoryStorage keeps the streams the broker creates in memory instead
// of on file: faster, and lost when the server restarts.
func WithMemoryStorage() Option {
	return func(c *config) error {
		c.storage = jetstream.MemoryStorage
		return nil
	}
}

// WithMaxAge sets how long the streams the broker creates keep a message
// ([DefaultMaxAge] by default; 0 keeps them until removed by hand).
func WithMaxAge(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return invalidOption("max age must be >= 0, not %v", d)
		}
		c.maxAge = d
		return nil
	}
}

// WithDuplicateWindow sets how long the streams the broker creates remember
// message IDs to drop re-publishes ([DefaultDuplicateWindow] by default).
func WithDuplicateWindow(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalidOption("duplicate window must be > 0, not %v", d)
		}
		c.dupWindow = d
		return nil
	}
}

// WithMaxPending bounds how many messages [Broker.PublishBatch] keeps in
// flight, waiting for their acknowledgement ([DefaultMaxPending] by
// default).
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
// unreachable or the stream missing, up to this bound.
func WithPublishTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalidOption("publish timeout must be > 0, not %v", d)
		}
		c.publishTimeout = d
		return nil
	}
}

// WithPrefetch sets how many messages a subscription pulls ahead of its
// free handlers, so that the next ones are there when a handler finishes
// (no round trip to the server between two messages, and pulls large
// enough to be cheap). A message waiting for a handler is reported in
// progress to JetStream like one being handled, so its AckWait does not run
// out while it waits; when the subscription stops, the waiting messages go
// back to JetStream at once (their next delivery counts one attempt more).
// By default a subscription prefetches [DefaultPrefetch] messages, or its
// [broker.Concurrency] if that is higher; 0 pulls only for free handlers,
// which at Concurrency 1 is one pull, and several system calls, per message.
// Each subscription holds at most Concurrency + prefetch messages in
// memory.
func WithPrefetch(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return invalidOption("prefetch must be >= 0, not %d", n)
		}
		c.prefetch = n
		return nil
	}
}

// WithReplicas sets how many servers of a JetStream cluster keep a copy of
// each stream the broker creates, topics' and dead-letter topics' alike
// ([DefaultReplicas] by default; 1..[MaxReplicas]). With 3, a stream
// survives the loss of one server: its leader's role passes to another
// replica within seconds, and publishes and deliveries carry on (a publish
// in flight meanwhile is retried, see [WithPublishTimeout]). A queue
// group's consumer has the replicas of its stream; a broadcast
// subscriber's consumer gets the same number (JetStream would make it R1).
//
// More than 1 needs a cluster of at least that many servers; a single
// server refuses such a stream, and the publish or subscribe that needed
// it fails with the server's reason. A stream found with fewer replicas
// than n is scaled up to n; one found with more is kept as it is (a
// broker started without the option must not scale a replicated stream
// down), and the broker logs it. A scale-up the cluster refuses (fewer
// servers up than n) is logged as a warning and the stream used as it is.
func WithReplicas(n int) Option {
	return func(c *config) error {
		if n < 1 || n > MaxReplicas {
			return invalidOption("replicas must be in 1..%d, not %d", MaxReplicas, n)
		}
		c.replicas = n
		return nil
	}
}

// WithLogger sets the logger of the broker's warnings (connection lost and
// regained, acks that could not be sent…); the default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return invalidOption("nil logger")
		}
		c.logger = l
		return nil
	}
}
