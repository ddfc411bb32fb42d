package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/herald-dev/herald/broker"
)

// ErrInFlight is returned by the [Dedupe] middleware for a message whose key
// another delivery is processing right now: the message is nacked and comes
// back later, when the other delivery has either finished (and this one is
// dropped) or given up (and this one runs).
var ErrInFlight = errors.New("middleware: message is being processed by another delivery")

// ClaimResult is what [DedupeStore.Claim] found.
type ClaimResult int

// The results of a claim.
const (
	// Claimed: the caller holds the key and must process the message.
	Claimed ClaimResult = iota + 1
	// Done: the key was processed already; the message is a duplicate.
	Done
	// Busy: another live claim holds the key.
	Busy
)

func (r ClaimResult) String() string {
	switch r {
	case Claimed:
		return "claimed"
	case Done:
		return "done"
	case Busy:
		return "busy"
	}
	return fmt.Sprintf("claim(%d)", int(r))
}

// DedupeStore records which keys were processed. A claim is a lease: if its
// holder dies, the key can be claimed again once ttl has passed. owner tells
// the holder of a claim from a later one that took it over.
//
// Implementations must be safe for concurrent use, by several processes
// where they are shared. Complete and Release by an owner that no longer
// holds the key do nothing and return nil, except that a Complete after the
// owner's lease ran out, while nobody took the key over, still records it
// done (the work happened). Package dedupetest is the conformance suite of
// these rules.
//
// The stores: [MemoryDedupeStore] (one process), [SQLDedupeStore] (a
// database), and, on the engines brokers already run, packages natsdedupe
// (a JetStream KV bucket) and redisdedupe (Redis keys). Replicas of one
// consumer must share one store, or a redelivery that reaches another
// replica is handled again.
type DedupeStore interface {
	// Claim takes key for owner for ttl, unless it is done or held by a
	// live claim.
	Claim(ctx context.Context, key, owner string, ttl time.Duration) (ClaimResult, error)
	// Complete marks key done, if owner still holds it, for as long as
	// the store keeps records (its retention: for good by default in
	// memory and SQL, 30 days in the broker engines' stores).
	Complete(ctx context.Context, key, owner string) error
	// Release drops owner's claim on key, so that a redelivery processes it.
	Release(ctx context.Context, key, owner string) error
}

// MinRetention is the shortest retention a store with one accepts: a done
// record must outlast the redeliveries of its message, which follow retry
// backoffs and claim leases.
const MinRetention = time.Minute

// CheckRetention checks a store's retention: 0 (records kept for good) or
// at least [MinRetention]. The broker engines' stores and dedupestore
// follow this one rule.
func CheckRetention(d time.Duration) error {
	if d < 0 || d > 0 && d < MinRetention {
		return fmt.Errorf("retention %v: want 0 (for good) or at least %v", d, MinRetention)
	}
	return nil
}

// DefaultClaimTTL is the lease of a [Dedupe] claim when none is set.
const DefaultClaimTTL = 5 * time.Minute

// Dedupe makes a handler idempotent: a message whose key was already handled
// successfully is acknowledged without calling the handler again. This is
// the idempotent consumer that turns at-least-once delivery into effects that
// happen once.
//
// The key is claimed before the handler runs, marked done after it succeeds,
// and released when it fails (so the redelivery runs it again). Two
// deliveries of one key at once cannot both run: the second gets
// [ErrInFlight] and is retried later.
//
// One gap remains, the one every idempotent consumer has: if the process
// dies after the handler's effect and before Complete, the claim expires
// after TTL and the message is handled again. Keep TTL well above the
// handler's longest run.
type Dedupe struct {
	// Store keeps the keys.
	Store DedupeStore
	// TTL is the lease of a claim; 0 means [DefaultClaimTTL].
	TTL time.Duration
	// Key returns a message's key; nil means the message ID.
	Key func(*broker.Message) string
	// Logger receives the failures to record a key as done, which cannot
	// be returned: the handler succeeded and its message must be acked.
	Logger *slog.Logger
}

// Middleware returns the deduplicating middleware.
func (d Dedupe) Middleware(next broker.Handler) broker.Handler {
	ttl := d.TTL
	if ttl <= 0 {
		ttl = DefaultClaimTTL
	}
	key := d.Key
	if key == nil {
		key = func(m *broker.Message) string { return m.ID }
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, m *broker.Message) error {
		k := key(m)
		if k == "" {
			return broker.Permanent(errors.New("dedupe: message has no key"))
		}
		owner := broker.NewID()
		res, err := d.Store.Claim(ctx, k, owner, ttl)
		if err != nil {
			return fmt.Errorf("dedupe: claim %q: %w", k, err)
		}
		switch res {
		case Done:
			log.DebugContext(ctx, "duplicate dropped", "msg_id", m.ID, "key", k, "attempt", m.Attempt)
			return nil
		case Busy:
			return fmt.Errorf("dedupe: %q: %w", k, ErrInFlight)
		}
		if err := next(ctx, m); err != nil {
			if rerr := d.Store.Release(context.WithoutCancel(ctx), k, owner); rerr != nil {
				return errors.Join(err, fmt.Errorf("dedupe: release %q: %w", k, rerr))
			}
			return err
		}
		if err := d.Store.Complete(context.WithoutCancel(ctx), k, owner); err != nil {
			log.ErrorContext(ctx, "dedupe: handled, but could not record it; a redelivery after the claim expires would run again",
				"msg_id", m.ID, "key", k, "err", err)
		}
		return nil
	}
}
