package kafka

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of [New].
const (
	// DefaultPartitions is the partition count of the topics the broker
	// creates: the most members a queue group can keep busy.
	DefaultPartitions = 6
	// DefaultMaxMessageBytes is the largest record (body, key and headers)
	// the broker produces, and the max.message.bytes of the topics it
	// creates: a 1 MiB body with room for its headers.
	DefaultMaxMessageBytes = 1<<20 + 64<<10
	// DefaultPublishTimeout bounds a publish whose context has no deadline.
	DefaultPublishTimeout = 30 * time.Second
	// DefaultRevokeGrace is how long a member losing partitions in a
	// rebalance waits for the handlers in flight on them before it commits
	// and lets them go.
	DefaultRevokeGrace = 10 * time.Second
	// DefaultHeartbeatInterval is the consumer group heartbeat: how soon a
	// member notices a rebalance, so how long a join or a leave takes.
	DefaultHeartbeatInterval = time.Second
	// DefaultSessionTimeout is how long the group waits for a silent member
	// (a crashed process) before it gives its partitions to the others.
	DefaultSessionTimeout = 15 * time.Second
)

type config struct {
	partitions      int32
	replication     int16
	maxMessageBytes int32
	publishTimeout  time.Duration
	revokeGrace     time.Duration
	heartbeat       time.Duration
	session         time.Duration
	prefetch        int
	kgoOpts         []kgo.Opt
	logger          *slog.Logger
}

func defaults() config {
	return config{
		partitions:      DefaultPartitions,
		replication:     -1,
		maxMessageBytes: DefaultMaxMessageBytes,
		publishTimeout:  DefaultPublishTimeout,
		revokeGrace:     DefaultRevokeGrace,
		heartbeat:       DefaultHeartbeatInterval,
		session:         DefaultSessionTimeout,
		prefetch:        256,
		logger:          slog.New(slog.DiscardHandler),
	}
}

// Option configures [New].
type Option func(*config) error

func invalidOption(format string, args ...any) error {
	return fmt.Errorf("kafka: %w: "+format, append([]any{broker.ErrInvalidOption}, args...)...)
}

// WithPartitions sets the partition count of the topics the broker creates
// ([DefaultPartitions] by default). Topics that exist are left as they are.
func WithPartitions(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 1<<16 {
			return invalidOption("partitions must be in [1, 65536], not %d", n)
		}
		c.partitions = int32(n)
		return nil
	}
}

// WithReplicationFactor sets the replication factor of the topics the broker
// creates; the default, -1, takes the cluster's default.
func WithReplicationFactor(n int) Option {
	return func(c *config) error {
		if n == 0 || n < -1 || n > 64 {
			return invalidOption("replication factor must be -1 or in [1, 64], not %d", n)
		}
		c.replication = int16(n)
		return nil
	}
}

// WithMaxMessageBytes sets the largest record the broker produces (body,
// key and headers), and the max.message.bytes of the topics it creates
// ([DefaultMaxMessageBytes] by default). Larger messages are refused with
// [broker.ErrTooLarge].
func WithMaxMessageBytes(n int) Option {
	return func(c *config) error {
		if n < 1<<10 || n > 1<<30 {
			return invalidOption("max message bytes must be in [1 KiB, 1 GiB], not %d", n)
		}
		c.maxMessageBytes = int32(n)
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

// WithRevokeGrace sets how long a queue-group member that loses partitions
// in a rebalance waits for the handlers in flight on them before it commits
// what they finished and lets the partitions go ([DefaultRevokeGrace] by
// default). A handler still running after it is not committed: the
// partition's new owner gets that message again.
func WithRevokeGrace(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return invalidOption("revoke grace must be >= 0, not %v", d)
		}
		c.revokeGrace = d
		return nil
	}
}

// WithGroupTiming sets the consumer group heartbeat interval and session
// timeout ([DefaultHeartbeatInterval], [DefaultSessionTimeout]). A shorter
// heartbeat makes joins and leaves faster; the session timeout must be
// within the cluster's group.min/max.session.timeout.ms and at least three
// heartbeats.
func WithGroupTiming(heartbeat, session time.Duration) Option {
	return func(c *config) error {
		if heartbeat <= 0 || session < 3*heartbeat {
			return invalidOption("heartbeat %v must be > 0 and session timeout %v at least three heartbeats", heartbeat, session)
		}
		c.heartbeat, c.session = heartbeat, session
		return nil
	}
}

// WithPrefetch sets how many records a subscription holds fetched but not
// yet handled (256 by default), beyond the handlers running.
func WithPrefetch(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return invalidOption("prefetch must be >= 1, not %d", n)
		}
		c.prefetch = n
		return nil
	}
}

// WithKgoOptions adds franz-go client options (SASL, TLS, a client ID, a
// dialer…) to every client the broker makes: its producer and admin client
// and each subscription's consumer. They come after Herald's own, so they
// can override them; do not set consumer-group or consume options here.
func WithKgoOptions(opts ...kgo.Opt) Option {
	return func(c *config) error {
		c.kgoOpts = append(c.kgoOpts, opts...)
		return nil
	}
}

// WithLogger sets the logger of the broker's warnings (a failed commit, a
// retry produce that had to be repeated…); the default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return invalidOption("nil logger")
		}
		c.logger = l
		return nil
	}
}
