package user

import (
	"context"
	"runtime"

	"golang.org/x/crypto/bcrypt"
)

// DefaultBcryptCost is the bcrypt cost of a service that sets none.
const DefaultBcryptCost = 10

// hasher hashes passwords with bcrypt, at most one per core at a time: a
// burst of registrations queues here instead of taking every core from the
// reads.
type hasher struct {
	cost int
	sem  chan struct{}
}

// newHasher returns a hasher at cost running up to slots hashes at once
// (runtime.GOMAXPROCS(0) when slots < 1).
func newHasher(cost, slots int) *hasher {
	if slots < 1 {
		slots = runtime.GOMAXPROCS(0)
	}
	return &hasher{cost: cost, sem: make(chan struct{}, slots)}
}

// hash returns the bcrypt hash of pw, waiting for a free slot as long as
// ctx allows.
func (h *hasher) hash(ctx context.Context, pw string) ([]byte, error) {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-h.sem }()
	return bcrypt.GenerateFromPassword([]byte(pw), h.cost)
}
