package middleware

import (
	"context"
	"time"

	"github.com/herald-dev/herald/broker"
)

// Retry calls the handler again, in process, when it fails: up to
// MaxRetries more times, waiting Backoff between calls. It does not retry a
// [broker.Permanent] error, an error ShouldRetry refuses, or once ctx is done;
// the last error goes to the broker, which nacks. The zero Retry does not
// retry.
type Retry struct {
	// MaxRetries is how many more calls are made after the first fails.
	MaxRetries int
	// Backoff spaces the calls; the zero Backoff retries at once.
	Backoff broker.Backoff
	// ShouldRetry, when set, says whether an error is worth another call.
	ShouldRetry func(error) bool
}

// Middleware returns the retrying middleware.
func (r Retry) Middleware(next broker.Handler) broker.Handler {
	return func(ctx context.Context, m *broker.Message) error {
		err := next(ctx, m)
		for i := 1; i <= r.MaxRetries && err != nil; i++ {
			if broker.IsPermanent(err) || (r.ShouldRetry != nil && !r.ShouldRetry(err)) {
				return err
			}
			t := time.NewTimer(r.Backoff.Delay(i))
			select {
			case <-ctx.Done():
				t.Stop()
				return err
			case <-t.C:
			}
			err = next(ctx, m)
		}
		return err
	}
}
