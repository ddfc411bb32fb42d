package gcppubsub

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/herald-dev/herald/broker"
	"google.golang.org/api/option"
)

// Defaults of [New].
const (
	// DefaultPrefix starts the Pub/Sub topic and subscription IDs the broker
	// uses: topic "user.registered" is Pub/Sub topic "herald.user.registered".
	DefaultPrefix = "herald."
	// DefaultPublishTimeout bounds a publish whose context has no deadline.
	DefaultPublishTimeout = 30 * time.Second
	// DefaultMaxMessageBytes is the largest message (body and headers) the
	// broker publishes: Pub/Sub's 10 MB request limit, less room for the
	// request around it.
	DefaultMaxMessageBytes = 10_000_000 - 64<<10
	// DefaultPublishDelay is how long the publisher waits to gather
	// messages into one request.
	DefaultPublishDelay = time.Millisecond
)

type config struct {
	prefix          string
	clientOpts      []option.ClientOption
	publishTimeout  time.Duration
	publishDelay    time.Duration
	maxMessageBytes int
	serverBackoff   bool
	deadLetter      bool
	streams         int
	onClose         []func() error
	logger          *slog.Logger
}

func defaults() config {
	return config{
		prefix:          DefaultPrefix,
		publishTimeout:  DefaultPublishTimeout,
		publishDelay:    DefaultPublishDelay,
		maxMessageBytes: DefaultMaxMessageBytes,
		deadLetter:      true,
		streams:         1,
		logger:          slog.New(slog.DiscardHandler),
	}
}

// Option configures [New].
type Option func(*config) error

func invalidOption(format string, args ...any) error {
	return fmt.Errorf("gcppubsub: %w: "+format, append([]any{broker.ErrInvalidOption}, args...)...)
}

// WithPrefix sets the start of the Pub/Sub topic and subscription IDs
// ([DefaultPrefix] by default). With "", a Herald topic is the Pub/Sub topic
// of the same ID, and topics Pub/Sub refuses as IDs (shorter than 3
// characters, not starting with a letter, starting with "goog") are refused
// with [broker.ErrBadTopic].
func WithPrefix(p string) Option {
	return func(c *config) error {
		if p != "" && !validID(p+"abc") {
			return invalidOption("prefix %q cannot start a Pub/Sub ID", p)
		}
		c.prefix = p
		return nil
	}
}

// WithClientOptions adds options to the Pub/Sub client [New] makes
// (credentials, an endpoint, a gRPC connection…).
func WithClientOptions(opts ...option.ClientOption) Option {
	return func(c *config) error {
		c.clientOpts = append(c.clientOpts, opts...)
		return nil
	}
}

// WithPublishTimeout bounds a publish whose context has no deadline
// ([DefaultPublishTimeout] by default).
func WithPublishTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalidOption("publish timeout must be > 0, not %v", d)
		}
		c.publishTimeout = d
		return nil
	}
}

// WithPublishDelay sets how long a publisher gathers messages into one
// request ([DefaultPublishDelay] by default): longer raises the throughput
// of many concurrent publishes and the latency of each.
func WithPublishDelay(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return invalidOption("publish delay must be >= 0, not %v", d)
		}
		c.publishDelay = d
		return nil
	}
}

// WithMaxMessageBytes sets the largest message (body and headers) Publish
// accepts ([DefaultMaxMessageBytes] by default); larger ones are refused
// with [broker.ErrTooLarge].
func WithMaxMessageBytes(n int) Option {
	return func(c *config) error {
		if n < 1<<10 || n > 10_000_000 {
			return invalidOption("max message bytes must be in [1 KiB, 10 MB], not %d", n)
		}
		c.maxMessageBytes = n
		return nil
	}
}

// WithServerBackoff makes redeliveries wait on Pub/Sub's side: the
// subscriptions the broker creates get a retry policy from the
// subscription's backoff (minimum Initial, maximum Max, both within
// Pub/Sub's 0 to 600 s), and a failed message is nacked at once. Pub/Sub
// then spaces redeliveries on its own exponential curve (Herald's
// Multiplier and Jitter do not apply) and a waiting message takes no room
// in the subscriber. Without it (the default) the subscriber holds the
// message for the backoff's delay, exactly, and then nacks it. The
// pstest emulator ignores retry policies.
func WithServerBackoff() Option {
	return func(c *config) error {
		c.serverBackoff = true
		return nil
	}
}

// WithoutDeadLetterPolicy leaves the native dead-letter policy off the
// subscriptions the broker creates. Pub/Sub then does not count
// deliveries, and [broker.Message.Attempt] is counted by each subscriber
// process for the messages it sees (a redelivery to another member, or
// after a restart, starts again at 1).
func WithoutDeadLetterPolicy() Option {
	return func(c *config) error {
		c.deadLetter = false
		return nil
	}
}

// WithReceiveStreams sets the least number of streaming pulls a subscriber
// opens (1 by default). A subscriber opens one per handler of its
// Concurrency, up to 8, and a broadcast subscriber at least 4: more streams
// pull faster. Pub/Sub's flow control (2 × Concurrency messages outstanding
// per subscriber) keeps one queue-group member from taking every message;
// an emulator without it, such as pstest, lets the streams of the member
// that connects first take a burst.
func WithReceiveStreams(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 64 {
			return invalidOption("receive streams must be in [1, 64], not %d", n)
		}
		c.streams = n
		return nil
	}
}

// WithLogger sets the logger of the broker's warnings; the default discards
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
