package redis

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/herald-dev/herald/broker"
	goredis "github.com/redis/go-redis/v9"
)

// Defaults of [New].
const (
	// DefaultPrefetch is the most entries a subscription holds at once:
	// read from the server and not yet settled. Within it, the subscription
	// holds about 100ms of handling at the rate its handlers settle
	// entries, and at least twice its Concurrency, reading again once half
	// of that is settled: fast handlers get large reads (every XREADGROUP
	// is a round trip and, on a server that fsyncs every write, an fsync),
	// slow ones hold few entries, which stay available to the other
	// members of the group.
	DefaultPrefetch = 1024
	// DefaultPublishTimeout bounds a Publish or PublishBatch whose context
	// has no deadline, retries included.
	DefaultPublishTimeout = 30 * time.Second
	// DefaultBlock is how long one XREADGROUP waits for new entries before
	// it is sent again.
	DefaultBlock = 5 * time.Second
	// DefaultMaxMessageSize is the largest message Publish accepts (body
	// and headers). Redis's own limit on one value is 512 MiB
	// (proto-max-bulk-len).
	DefaultMaxMessageSize = 64 << 20
)

type config struct {
	client         *goredis.Client // from WithClient: not ours to close
	prefix         string
	maxLen         int64
	prefetch       int
	publishTimeout time.Duration
	block          time.Duration
	maxSize        int
	logger         *slog.Logger
}

func defaults() config {
	return config{
		prefix:         DefaultPrefix,
		prefetch:       DefaultPrefetch,
		publishTimeout: DefaultPublishTimeout,
		block:          DefaultBlock,
		maxSize:        DefaultMaxMessageSize,
		logger:         slog.New(slog.DiscardHandler),
	}
}

// Option configures [New].
type Option func(*config) error

func invalidOption(format string, args ...any) error {
	return fmt.Errorf("redis: %w: "+format, append([]any{broker.ErrInvalidOption}, args...)...)
}

// WithClient makes the broker use c instead of connecting to the URL given
// to [New] (which may then be ""). The broker does not own c: Close leaves it
// open. Subscriptions still read over connections of their own, made with
// c's options.
func WithClient(c *goredis.Client) Option {
	return func(cfg *config) error {
		if c == nil {
			return invalidOption("nil client")
		}
		cfg.client = c
		return nil
	}
}

// WithPrefix sets the namespace of the broker's keys, [DefaultPrefix] by
// default: topic "a.b" is stream prefix + ":{a.b}". It is one token of
// letters, digits, '-' and '_'. Brokers that talk to each other must use
// the same prefix.
func WithPrefix(prefix string) Option {
	return func(c *config) error {
		if err := broker.ValidateQueue(prefix); err != nil {
			return invalidOption("prefix: %v", err)
		}
		c.prefix = prefix
		return nil
	}
}

// WithMaxLen caps each topic's stream at about n entries (XADD MAXLEN ~ n):
// older entries are trimmed, whether or not every group has read them. 0,
// the default, keeps every entry until it is trimmed by hand.
func WithMaxLen(n int64) Option {
	return func(c *config) error {
		if n < 0 {
			return invalidOption("max length must be >= 0, not %d", n)
		}
		c.maxLen = n
		return nil
	}
}

// WithPrefetch sets the most entries a subscription holds at once
// ([DefaultPrefetch] by default; see there). A subscription may hold twice
// its Concurrency whatever this is.
func WithPrefetch(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return invalidOption("prefetch must be >= 1, not %d", n)
		}
		c.prefetch = n
		return nil
	}
}

// WithPublishTimeout bounds a publish whose context has no deadline
// ([DefaultPublishTimeout] by default). Publish retries while the server is
// unreachable or loading its data, up to this bound.
func WithPublishTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalidOption("publish timeout must be > 0, not %v", d)
		}
		c.publishTimeout = d
		return nil
	}
}

// WithBlock sets how long one XREADGROUP blocks waiting for entries
// ([DefaultBlock] by default). Unsubscribe does not wait for it: it wakes
// the read with CLIENT UNBLOCK.
func WithBlock(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Millisecond {
			return invalidOption("block must be >= 1ms, not %v", d)
		}
		c.block = d
		return nil
	}
}

// WithMaxMessageSize sets the largest message Publish accepts, body and
// headers ([DefaultMaxMessageSize] by default); larger ones fail with
// [broker.ErrTooLarge].
func WithMaxMessageSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return invalidOption("max message size must be >= 1, not %d", n)
		}
		c.maxSize = n
		return nil
	}
}

// WithLogger sets the logger of the broker's warnings (server unreachable,
// acknowledgements that could not be sent…); the default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return invalidOption("nil logger")
		}
		c.logger = l
		return nil
	}
}
