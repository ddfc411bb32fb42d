package broker

import (
	"math"
	"math/rand/v2"
	"time"
)

// Backoff computes the delay before a redelivery: Initial after the first
// failed attempt, multiplied by Multiplier after each further one, capped at
// Max, and spread by ±Jitter (a fraction) so that messages that failed
// together do not all come back together.
//
// The zero Backoff redelivers at once.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     float64
}

// Delay returns the delay after the given failed attempt (1 for the first).
func (b Backoff) Delay(attempt int) time.Duration {
	if b.Initial <= 0 {
		return 0
	}
	if attempt < 1 {
		attempt = 1
	}
	mult := b.Multiplier
	if mult < 1 {
		mult = 1
	}
	d := float64(b.Initial) * math.Pow(mult, float64(attempt-1))
	if b.Max > 0 && d > float64(b.Max) {
		d = float64(b.Max)
	}
	if b.Jitter > 0 {
		d *= 1 + b.Jitter*(2*rand.Float64()-1)
	}
	if d > math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}

func (b Backoff) validate() error {
	switch {
	case b.Initial < 0 || b.Max < 0:
		return invalidOption("backoff durations must be >= 0")
	case b.Max > 0 && b.Max < b.Initial:
		return invalidOption("backoff max %v is below its initial %v", b.Max, b.Initial)
	case b.Multiplier != 0 && b.Multiplier < 1:
		return invalidOption("backoff multiplier must be >= 1, not %v", b.Multiplier)
	case b.Jitter < 0 || b.Jitter > 1:
		return invalidOption("backoff jitter must be in [0, 1], not %v", b.Jitter)
	}
	return nil
}
