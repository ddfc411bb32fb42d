package user

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/time/rate"

	"github.com/herald-dev/herald/broker"
)

// Defaults of the Create rate limit per client address (see
// [WithCreateRateLimit]).
const (
	// DefaultCreateRate is how many Create calls per second one client
	// address may make in the long run.
	DefaultCreateRate = 50
	// DefaultCreateBurst is how many it may make at once.
	DefaultCreateBurst = 100
	// DefaultCreateMaxWait is how long a call over the rate waits for its
	// turn before it is refused: a client slightly over the rate is slowed
	// down, a flood is refused.
	DefaultCreateMaxWait = 2 * time.Second
)

// idleLimiter is how long a client address's limiter is kept after its last
// call; a full bucket forgets nothing by being dropped.
const idleLimiter = 5 * time.Minute

// createLimiter limits Create per client address with one token bucket per
// address (golang.org/x/time/rate). It is safe for concurrent use.
type createLimiter struct {
	rate    rate.Limit
	burst   int
	maxWait time.Duration

	mu      sync.Mutex
	clients map[string]*clientLimiter
	swept   time.Time
}

type clientLimiter struct {
	lim  *rate.Limiter
	last time.Time
}

func newCreateLimiter(perSecond float64, burst int, maxWait time.Duration) *createLimiter {
	return &createLimiter{rate: rate.Limit(perSecond), burst: burst, maxWait: maxWait,
		clients: map[string]*clientLimiter{}, swept: time.Now()}
}

// wait lets a call from addr (host:port, or a bare host) through at once,
// after a wait of at most maxWait, or refuses it with ResourceExhausted.
func (l *createLimiter) wait(ctx context.Context, addr string) error {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.swept) > idleLimiter {
		for k, c := range l.clients {
			if now.Sub(c.last) > idleLimiter {
				delete(l.clients, k)
			}
		}
		l.swept = now
	}
	c := l.clients[host]
	if c == nil {
		c = &clientLimiter{lim: rate.NewLimiter(l.rate, l.burst)}
		l.clients[host] = c
	}
	c.last = now
	r := c.lim.ReserveN(now, 1)
	l.mu.Unlock()

	delay := r.DelayFrom(now)
	if !r.OK() || delay > l.maxWait {
		r.CancelAt(now)
		return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
			"too many registrations from %s: the limit is %g per second per client address (burst %d); retry in %s",
			host, float64(l.rate), l.burst, max(delay, time.Second).Round(100*time.Millisecond)))
	}
	if delay == 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return connect.NewError(connect.CodeOf(ctx.Err()), errors.New("cancelled while waiting for the registration rate limit"))
	}
}

// WithCreateRateLimit limits Create per client address (the connection's
// peer address, so a proxy's clients share its limit) to perSecond calls a
// second with bursts of burst: a call over the rate waits up to maxWait for
// its turn, and is refused with ResourceExhausted, naming the limit, when it
// would wait longer. perSecond 0 turns the limit off. Without this option
// the limit is [DefaultCreateRate], [DefaultCreateBurst],
// [DefaultCreateMaxWait].
func WithCreateRateLimit(perSecond float64, burst int, maxWait time.Duration) Option {
	return func(s *Service) error {
		switch {
		case perSecond < 0:
			return fmt.Errorf("user: %w: create rate must be >= 0 (0: off), not %g", broker.ErrInvalidOption, perSecond)
		case perSecond == 0:
			s.limiter = nil
			return nil
		case burst < 1:
			return fmt.Errorf("user: %w: create burst must be >= 1, not %d", broker.ErrInvalidOption, burst)
		case maxWait < 0:
			return fmt.Errorf("user: %w: create max wait must be >= 0, not %s", broker.ErrInvalidOption, maxWait)
		}
		s.limiter = newCreateLimiter(perSecond, burst, maxWait)
		return nil
	}
}
