package httpbroker

import "sync/atomic"

// Stats are a broker's counters since it was made.
type Stats struct {
	// Published counts messages committed to the spool (once per message,
	// whatever its number of targets).
	Published uint64
	// Spooled is how many deliveries wait in the spool (one per message and
	// target), including those in flight.
	Spooled int64
	// Delivered counts deliveries a subscriber acknowledged.
	Delivered uint64
	// Retried counts deliveries answered with a retry (a handler error) or
	// abandoned by a subscription that stopped.
	Retried uint64
	// Handled counts messages this broker's endpoint handed to handlers.
	Handled uint64
	// DeadLettered counts messages this broker's subscriptions sent to a
	// dead-letter topic.
	DeadLettered uint64

	// Refused deliveries, never handed to a handler. Unsigned: no signature
	// headers. Forged: a signature that does not verify (wrong secret, or
	// the request altered on the way). Stale: a timestamp outside the
	// replay window. Replayed: a nonce already seen. Malformed: a body that
	// is not a valid batch. TooLarge: a body over the size limit. Busy: too
	// many nonces to remember.
	RefusedUnsigned  uint64
	RefusedForged    uint64
	RefusedStale     uint64
	RefusedReplayed  uint64
	RefusedMalformed uint64
	RefusedTooLarge  uint64
	RefusedBusy      uint64

	// BadResults counts delivery answers whose checkpoint did not verify:
	// they were not applied, and the messages were sent again.
	BadResults uint64
}

type counters struct {
	published, delivered, retried, handled, deadLettered   atomic.Uint64
	spooled                                                atomic.Int64
	unsigned, forged, stale, replayed, malformed, tooLarge atomic.Uint64
	busy, badResults                                       atomic.Uint64
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	c := &b.stats
	return Stats{
		Published:        c.published.Load(),
		Spooled:          c.spooled.Load(),
		Delivered:        c.delivered.Load(),
		Retried:          c.retried.Load(),
		Handled:          c.handled.Load(),
		DeadLettered:     c.deadLettered.Load(),
		RefusedUnsigned:  c.unsigned.Load(),
		RefusedForged:    c.forged.Load(),
		RefusedStale:     c.stale.Load(),
		RefusedReplayed:  c.replayed.Load(),
		RefusedMalformed: c.malformed.Load(),
		RefusedTooLarge:  c.tooLarge.Load(),
		RefusedBusy:      c.busy.Load(),
		BadResults:       c.badResults.Load(),
	}
}
