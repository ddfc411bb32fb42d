// Package redisdedupe is a [middleware.DedupeStore] in Redis keys. Every
// replica of a consumer connected to one Redis server shares the keys, so a
// message that one replica handled is a duplicate for all of them: a
// redelivery that lands on another replica (its first holder crashed, or
// its acknowledgement was lost) is dropped there too.
//
//	var c *goredis.Client
//	if !broker.As(b, &c) { … } // a Herald Redis broker exposes its client
//	store, err := redisdedupe.New(c, redisdedupe.WithPrefix("herald:dedupe:email:"))
//	h := middleware.Dedupe{Store: store}.Middleware(send)
//
// A [Store] is safe for concurrent use, by any number of processes. It does
// not own the client.
//
// # Records
//
// Each message key is one Redis key, prefix + message key (byte for byte),
// whose value is "claimed:<owner>" while a delivery holds it and
// "done:<owner>" once it was handled. Each step is one Lua script on that
// one key, atomic on the server (and on one slot of a Cluster):
//
//   - Claim sets the key if it is absent, with the claim's lease as its
//     expiry (PX, milliseconds): when the holder dies, the server removes
//     the key when the lease runs out, on its own clock, and the next Claim
//     sets it again. Of two claimers at once, one sets the key and the
//     other finds it.
//   - Complete rewrites the holder's claim as done, or writes the done
//     record if the holder's lease ran out and nobody claimed the key
//     since: the work happened.
//   - Release deletes the holder's claim, so the redelivery handles the
//     message.
//
// # Retention
//
// A done record expires [DefaultRetention] (30 days) after it was written,
// unless [WithRetention] says otherwise (0: never). Redis streams are not
// trimmed by default, so a consumer group created anew on an old stream can
// be handed events older than that: keep the retention longer than the
// streams' history, or 0. A record that expired lets a later copy of its
// message be handled again.
//
// # Durability
//
// The records are as durable as the server keeps its data, like the
// broker's streams: with appendonly yes and appendfsync always a record is
// on disk before Complete returns; with less, a crash of the server can
// lose the records of the last moments, and their messages, if redelivered,
// are handled again.
package redisdedupe
