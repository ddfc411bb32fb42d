// Package middleware holds the behaviours that wrap a [broker.Handler]
// rather than live inside a backend: recovering panics, bounding handler
// time, retrying in process, dead-lettering for brokers without native
// support, and deduplicating redelivered messages (the idempotent consumer).
//
// A middleware is a func(broker.Handler) broker.Handler. [Chain] applies a
// list so that the first listed runs outermost:
//
//	h := middleware.Chain(send,
//		middleware.Recover(),
//		middleware.Dedupe{Store: store}.Middleware,
//		middleware.Timeout(10*time.Second),
//	)
//
// [Dedupe] keeps its records in a [DedupeStore]: in memory, in a SQL
// database, or on the broker's own engine (middleware/natsdedupe: a
// JetStream KV bucket; middleware/redisdedupe: Redis keys), where every
// replica of a consumer shares them. middleware/dedupetest is the suite
// every store passes.
//
// Herald's own backends already recover panics, retry with backoff and
// dead-letter (see [broker.Process]); [Retry] and [DeadLetter] are for
// handlers run by something else (a third-party broker, a Go Micro
// subscriber) and for retrying a transient failure at once, in process,
// before the broker's slower redelivery.
package middleware

import "github.com/herald-dev/herald/broker"

// Middleware wraps a handler with a behaviour.
type Middleware = func(broker.Handler) broker.Handler

// Chain wraps h in mws, the first listed outermost.
func Chain(h broker.Handler, mws ...Middleware) broker.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}
