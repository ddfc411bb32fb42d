package nats

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-dev/herald/internal/jsleader"
)

// Reading a replicated bucket through a KV watch is not read-your-writes:
// the watch's consumer is placed by the server on any replica, and a
// follower may not have applied a write its leader has already
// acknowledged. Lookup therefore first asks the leader for the revision of
// the service's newest entry (a barrier) and reads the watch until it has
// delivered that revision or a later one. Without the leader (the bucket
// is electing one) it reads what the replica has, as a lookup would
// without the barrier, rather than fail.

// barrierTimeout bounds the wait for the leader's answer: the HTTP broker
// gives a lookup 2s in all.
const barrierTimeout = time.Second

// barrierRecheck is how long Lookup waits for the barrier's revision before
// asking the leader again: the entry may be a marker that expired (and was
// removed everywhere) before the watch's replica delivered it.
const barrierRecheck = 250 * time.Millisecond

// barrier returns the revision of the newest entry whose key matches
// filter, as the leader has it: 0 when there is none, or (with a warning)
// when the leader did not answer.
func (r *Registry) barrier(ctx context.Context, service, filter string) uint64 {
	lctx, cancel := context.WithTimeout(ctx, timeout(ctx, barrierTimeout))
	defer cancel()
	msg, err := jsleader.LastMsg(lctx, r.js, "KV_"+r.bucket, "$KV."+r.bucket+"."+filter)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return 0
	case err != nil:
		if ctx.Err() == nil { // not the caller giving up
			r.log.Warn("registry: the bucket's leader did not answer; this lookup may miss the newest writes", "service", service, "err", err)
		}
		return 0
	}
	return msg.Sequence
}
