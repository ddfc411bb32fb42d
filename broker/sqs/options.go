package sqs

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/herald-dev/herald/broker"
)

// Defaults of [New].
const (
	// DefaultPrefix starts the SNS topic and SQS queue names the broker
	// uses.
	DefaultPrefix = "herald-"
	// DefaultWaitTime is the long-polling wait of a receive (SQS allows up
	// to 20 s).
	DefaultWaitTime = 20 * time.Second
	// DefaultMaxMessageBytes is the largest message SNS and SQS carry:
	// 256 KiB, the encoded body and the message attribute together.
	DefaultMaxMessageBytes = 256 << 10
	// DefaultPublishTimeout bounds a publish whose context has no deadline.
	DefaultPublishTimeout = 30 * time.Second
	// DefaultRetention is how long a queue keeps a message (SQS's maximum).
	DefaultRetention = 14 * 24 * time.Hour
)

type config struct {
	prefix          string
	endpoint        string
	waitTime        time.Duration
	maxMessageBytes int
	publishTimeout  time.Duration
	retention       time.Duration
	redrive         int
	logger          *slog.Logger
}

func defaults() config {
	return config{
		prefix:          DefaultPrefix,
		waitTime:        DefaultWaitTime,
		maxMessageBytes: DefaultMaxMessageBytes,
		publishTimeout:  DefaultPublishTimeout,
		retention:       DefaultRetention,
		logger:          slog.New(slog.DiscardHandler),
	}
}

// Option configures [New].
type Option func(*config) error

func invalidOption(format string, args ...any) error {
	return fmt.Errorf("sqs: %w: "+format, append([]any{broker.ErrInvalidOption}, args...)...)
}

// WithPrefix sets the start of the SNS topic and SQS queue names
// ([DefaultPrefix] by default): letters, digits, '-' and '_', at most 20.
func WithPrefix(p string) Option {
	return func(c *config) error {
		if len(p) > 20 || !validName(p) {
			return invalidOption("prefix %q: want at most 20 letters, digits, '-' or '_'", p)
		}
		c.prefix = p
		return nil
	}
}

// WithEndpoint sends the SNS and SQS requests to url (an emulator such as
// kumo or LocalStack) instead of AWS's endpoints.
func WithEndpoint(url string) Option {
	return func(c *config) error {
		c.endpoint = url
		return nil
	}
}

// WithWaitTime sets the long-polling wait of a receive ([DefaultWaitTime]
// by default; 0 to 20 s, in whole seconds). Unsubscribe interrupts a wait.
func WithWaitTime(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 || d > 20*time.Second || d%time.Second != 0 {
			return invalidOption("wait time must be whole seconds in [0, 20s], not %v", d)
		}
		c.waitTime = d
		return nil
	}
}

// WithMaxMessageBytes sets the largest encoded message (body and attribute)
// Publish accepts ([DefaultMaxMessageBytes] by default). Raise it only for
// queues and topics that take more.
func WithMaxMessageBytes(n int) Option {
	return func(c *config) error {
		if n < 1<<10 || n > 2<<20 {
			return invalidOption("max message bytes must be in [1 KiB, 2 MiB], not %d", n)
		}
		c.maxMessageBytes = n
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

// WithRetention sets how long the queues the broker creates keep a message
// ([DefaultRetention] by default; SQS allows 1 minute to 14 days).
func WithRetention(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Minute || d > DefaultRetention {
			return invalidOption("retention must be in [1m, 336h], not %v", d)
		}
		c.retention = d
		return nil
	}
}

// WithRedrive gives each queue group's queue a native SQS redrive policy: a
// message received more than MaxAttempts + extra times is moved by SQS to the
// queue "<queue>-dlq". Herald dead-letters a message after MaxAttempts
// itself (to the dead-letter topic, with its reason); the redrive is a
// safety net for a message that never reaches a decision, such as one whose
// handler crashes the process. 0 (the default) sets no redrive policy.
func WithRedrive(extra int) Option {
	return func(c *config) error {
		if extra < 0 {
			return invalidOption("redrive extra receives must be >= 0, not %d", extra)
		}
		c.redrive = extra
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
