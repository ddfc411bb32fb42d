package natsdedupe

import (
	"fmt"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/middleware"
)

// Defaults of [New].
const (
	// DefaultBucket is the bucket of the records unless [WithBucket] names
	// another.
	DefaultBucket = "herald_dedupe"
	// DefaultRetention is how long a done record is kept (the bucket's max
	// age): four times the NATS broker's stream max age.
	DefaultRetention = 30 * 24 * time.Hour
	// MarkerTTL is how long the bucket keeps the marker of a released or
	// expired key (its LimitMarkerTTL).
	MarkerTTL = time.Minute
	// MaxKeyLen is the longest message key the store takes, in bytes.
	MaxKeyLen = 512
)

type config struct {
	bucket    string
	retention time.Duration
	replicas  int
}

func defaults() config {
	return config{bucket: DefaultBucket, retention: DefaultRetention, replicas: 1}
}

// Option configures [New].
type Option func(*config) error

func invalid(format string, args ...any) error {
	return fmt.Errorf("natsdedupe: %w: "+format, append([]any{broker.ErrInvalidOption}, args...)...)
}

// WithBucket sets the bucket ([DefaultBucket] by default): letters, digits,
// '-' and '_'. Give each consumer a bucket of its own, so that one
// consumer's records never make another skip a message.
func WithBucket(name string) Option {
	return func(c *config) error {
		if name == "" || len(name) > 64 {
			return invalid("bucket name %q: want 1 to 64 characters", name)
		}
		for i := range len(name) {
			if !plainByte(name[i]) {
				return invalid("bucket name %q: only letters, digits, '-' and '_'", name)
			}
		}
		c.bucket = name
		return nil
	}
}

// WithRetention sets how long a done record is kept ([DefaultRetention] by
// default; 0 keeps records for good). It must be 0 or at least a minute,
// and longer than every claim's lease.
func WithRetention(d time.Duration) Option {
	return func(c *config) error {
		if err := middleware.CheckRetention(d); err != nil {
			return invalid("%v", err)
		}
		c.retention = d
		return nil
	}
}

// WithReplicas sets how many servers of a JetStream cluster keep the bucket
// (1 by default, at most 5). Give it the replica count of the broker's
// streams: the records should survive what the events survive.
func WithReplicas(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 5 {
			return invalid("replicas %d: want 1 to 5", n)
		}
		c.replicas = n
		return nil
	}
}
