package middleware

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/herald-dev/herald/broker"
)

// Recover turns a panic in the handler into an error wrapping
// [broker.ErrPanic], with the stack, so the message is nacked instead of the
// process crashing.
func Recover() Middleware {
	return func(next broker.Handler) broker.Handler {
		return func(ctx context.Context, m *broker.Message) (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%w: %v\n%s", broker.ErrPanic, r, debug.Stack())
				}
			}()
			return next(ctx, m)
		}
	}
}

// Timeout bounds every handler call to d: the handler's context is cancelled
// after d, and a handler that honours it returns the context's error, which
// nacks the message.
func Timeout(d time.Duration) Middleware {
	return func(next broker.Handler) broker.Handler {
		return func(ctx context.Context, m *broker.Message) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next(ctx, m)
		}
	}
}
