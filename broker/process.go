package broker

import (
	"context"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"
)

// Action is what a backend must do with a delivered message once its handler
// has run.
type Action int

// The actions a [Decision] can take.
const (
	// Ack acknowledges the message: it is done.
	Ack Action = iota
	// Retry negatively acknowledges the message: deliver it again after
	// [Decision.Delay].
	Retry
	// DeadLetter publishes [NewDeadLetter] of the message to the dead-letter
	// topic and then acknowledges the original.
	DeadLetter
)

func (a Action) String() string {
	switch a {
	case Ack:
		return "ack"
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead-letter"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Decision is the outcome of [Process].
type Decision struct {
	Action Action
	// Delay is how long to wait before redelivering (Retry only).
	Delay time.Duration
	// Err is the handler's error (Retry and DeadLetter).
	Err error
}

// Process runs h on m, recovering a panic, and decides what the backend must
// do with m under o: ack it, retry it after a backoff, or dead-letter it.
// Every backend calls Process for every delivery, so the rules of the
// contract are applied in this one place.
//
// A handler that fails because ctx was cancelled (the subscription is
// shutting down) is retried at once, never dead-lettered: shutting down is
// not the message's fault.
func Process(ctx context.Context, h Handler, m *Message, o *SubscribeOptions) Decision {
	return Decide(ctx, m, o, call(ctx, h, m))
}

// Decide is the rule [Process] applies once the handler of m returned err:
// exported so that code observing deliveries (metrics, tracing) classifies
// them by the contract's own rule rather than a copy of it.
func Decide(ctx context.Context, m *Message, o *SubscribeOptions, err error) Decision {
	switch {
	case err == nil:
		return Decision{Action: Ack}
	case ctx.Err() != nil && !IsPermanent(err):
		return Decision{Action: Retry, Err: err}
	case IsPermanent(err):
		return Decision{Action: DeadLetter, Err: err}
	case m.Attempt >= o.MaxAttempts:
		return Decision{Action: DeadLetter, Err: fmt.Errorf("gave up after %d attempts: %w", m.Attempt, err)}
	}
	return Decision{Action: Retry, Delay: o.Backoff.Delay(m.Attempt), Err: err}
}

// call runs h, turning a panic into an error that wraps [ErrPanic]. The
// stack goes into the error so the dead letter says where it happened.
func call(ctx context.Context, h Handler, m *Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v\n%s", ErrPanic, r, debug.Stack())
		}
	}()
	return h(ctx, m)
}
