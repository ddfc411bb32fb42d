package outbox

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/herald-dev/herald/broker"
)

// Defaults of a [Relay].
const (
	DefaultPollInterval   = time.Second
	DefaultBatchSize      = 256
	DefaultLease          = 30 * time.Second
	DefaultPublishTimeout = 10 * time.Second
	// MaxBatchSize bounds [WithBatchSize].
	MaxBatchSize = 10_000
)

// DefaultBackoff spaces the retries of rows whose publish failed.
var DefaultBackoff = broker.Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.2} //nolint:gochecknoglobals // a constant value; broker.Backoff cannot be a const.

// Option configures a [Relay].
type Option func(*options) error

type options struct {
	poll           time.Duration
	batch          int
	lease          time.Duration
	publishTimeout time.Duration
	backoff        broker.Backoff
	log            *slog.Logger
}

func defaults() options {
	return options{
		poll:           DefaultPollInterval,
		batch:          DefaultBatchSize,
		lease:          DefaultLease,
		publishTimeout: DefaultPublishTimeout,
		backoff:        DefaultBackoff,
		log:            slog.New(slog.DiscardHandler),
	}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("outbox: %w: "+format, append([]any{broker.ErrInvalidOption}, args...)...)
}

// WithPollInterval sets how often the relay looks for rows when nothing
// wakes it (d > 0; default [DefaultPollInterval]). The poll is the fallback
// for rows written by other processes and for retries.
func WithPollInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return invalid("poll interval must be > 0, not %v", d)
		}
		o.poll = d
		return nil
	}
}

// WithBatchSize sets how many rows the relay claims and publishes at once
// (1 to [MaxBatchSize]; default [DefaultBatchSize]).
func WithBatchSize(n int) Option {
	return func(o *options) error {
		if n < 1 || n > MaxBatchSize {
			return invalid("batch size must be in [1, %d], not %d", MaxBatchSize, n)
		}
		o.batch = n
		return nil
	}
}

// WithLease sets how long a claim lasts: rows claimed by a relay that died
// are published by another once it runs out (default [DefaultLease]). It
// must exceed the publish timeout.
func WithLease(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return invalid("lease must be > 0, not %v", d)
		}
		o.lease = d
		return nil
	}
}

// WithPublishTimeout bounds one batch's publish (default
// [DefaultPublishTimeout]). It must be shorter than the lease.
func WithPublishTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return invalid("publish timeout must be > 0, not %v", d)
		}
		o.publishTimeout = d
		return nil
	}
}

// WithBackoff sets the delay before a row whose publish failed is tried
// again (default [DefaultBackoff]).
func WithBackoff(b broker.Backoff) Option {
	return func(o *options) error {
		if b.Initial < 0 || b.Max < 0 || (b.Max > 0 && b.Max < b.Initial) || (b.Multiplier != 0 && b.Multiplier < 1) || b.Jitter < 0 || b.Jitter > 1 {
			return invalid("backoff %+v is not valid", b)
		}
		o.backoff = b
		return nil
	}
}

// WithLogger sets the relay's logger (discard by default). It logs failed
// publishes at warn level, and each published batch at debug level, with
// the keys topic, msg_id and attempt; never a message body.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return invalid("nil logger")
		}
		o.log = l
		return nil
	}
}
