// Package natsdedupe is a [middleware.DedupeStore] in a NATS JetStream
// key-value bucket. Every replica of a consumer connected to one NATS
// server (or cluster) shares the bucket, so a message that one replica
// handled is a duplicate for all of them: a redelivery that lands on
// another replica (its first holder crashed, or its acknowledgement was
// lost) is dropped there too.
//
//	var js jetstream.JetStream
//	if !broker.As(b, &js) { … } // a Herald NATS broker exposes its JetStream
//	store, err := natsdedupe.New(ctx, js, natsdedupe.WithBucket("herald_dedupe_email"))
//	h := middleware.Dedupe{Store: store}.Middleware(send)
//
// A [Store] is safe for concurrent use, by any number of processes. It does
// not own the connection: closing it is the caller's business.
//
// # Records
//
// Each message key is one key of the bucket, whose value is
// "claimed:<owner>" while a delivery holds it and "done:<owner>" once it
// was handled. A message key made only of ASCII letters, digits, '-' and
// '_' (Herald's message IDs are) is the bucket key as it is, so `nats kv get
// herald_dedupe_email <message-id>` finds it; any other key is written "="
// followed by its unpadded base64url form, which no plain key can start
// with. Keys are at most [MaxKeyLen] bytes.
//
// # Claims and leases
//
// Every step is one atomic JetStream operation checked against the key's
// last revision, so two replicas never both win:
//
//   - Claim creates the key (the server refuses a second create of a live
//     key) with a per-key TTL, the claim's lease rounded up to whole
//     seconds. When the holder dies, the server itself deletes the key when
//     the TTL runs out, on its own clock, and the next Claim creates it
//     again: no replica's clock is compared with another's.
//   - Complete rewrites the holder's claim as done (a revision-checked
//     update, with no TTL), or creates the done record if the holder's
//     lease ran out and nobody claimed the key since: the work happened.
//   - Release purges the holder's claim (revision-checked), so the
//     redelivery handles the message; the purge marker goes after the
//     bucket's marker TTL ([MarkerTTL]).
//
// The record a step checks is read through the bucket's stream leader
// (see internal/jsleader), not with the direct get of kv.Get, which any
// replica of a replicated bucket answers, possibly before it has applied
// another replica's write: a stale read made Release keep a claim, or
// Claim report a completed key busy.
//
// Per-key TTLs need nats-server 2.11 or later and a bucket made with a
// marker TTL (LimitMarkerTTL), which [New] does; it refuses a bucket that
// exists without one.
//
// # Retention
//
// A done record is kept for the bucket's max age, [DefaultRetention] (30
// days) unless [WithRetention] says otherwise (0: for good), counted from
// when it was written. That is four times the NATS broker's stream max age
// (7 days): an event the broker can still deliver, even to a consumer group
// created anew that starts at the beginning of its stream, finds its record.
// A record that aged out lets a later copy of its message be handled again.
//
// # Bucket
//
// [New] creates the bucket ([DefaultBucket] unless [WithBucket] names
// another) with one revision per key, file storage, the retention as max
// age and [WithReplicas] replicas (1 by default; up to 5 in a cluster). A
// bucket that exists is used, and its max age is updated to the store's
// when it differs, so the last replica started sets it; its replicas are
// raised to the store's, never lowered.
package natsdedupe
