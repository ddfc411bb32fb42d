// Package redis is a [broker.Broker] on Redis Streams, through the official
// client github.com/redis/go-redis/v9.
//
//	b, err := redis.New(ctx, "redis://127.0.0.1:6379/0")
//
// # Layout
//
// Each topic is one stream, prefix + ":{" + topic + "}" ("herald:{user.registered}";
// the braces are a Cluster hash tag that keeps a topic's keys on one slot).
// A message is one entry: fields "id" (the message ID), "b" (the body) and
// "h:<name>" per header, so XRANGE shows it readably; its PublishedAt is the
// entry ID's time, from the server's clock (millisecond precision).
//
// Each queue group is one consumer group on the stream, named after the queue
// group; each subscription is one consumer in it. A broadcast subscriber is a
// consumer group of its own, named "~" + a random ID. Beside the stream, each
// group has two keys of its own: a sorted set of messages waiting for their
// redelivery time (":<group>:delay") and a stream of redeliveries that are
// due (":<group>:redo"), which only that group reads.
//
// # Delivery semantics
//
// Delivery is at least once, as [broker] describes, with these engine
// specifics:
//
//   - Publish returns once XADD was answered. How durable that is, is the
//     server's persistence: with appendonly yes and appendfsync always (what
//     scripts/servers/start-redis.sh configures, and what Herald needs to
//     lose nothing) the entry is written and fsynced before the server
//     answers; with appendfsync everysec a crash of the machine loses up to a
//     second; with persistence off a restart loses everything. New logs a
//     warning when the server is not set to appendonly yes and appendfsync
//     always. Publish retries while the server is unreachable or loading, so
//     a retry after a lost answer may store a message twice, with its ID.
//   - A queue group's consumer group is created at the start of the stream
//     (XGROUP CREATE … 0 MKSTREAM): a group that did not exist gets every
//     entry still in the stream, those published before it was created
//     included. [Broker.DeclareGroup] ([broker.GroupDeclarer]) creates a
//     queue group's consumer groups the same way, without a member. The
//     stream keeps the entries whether or not a group exists, so on Redis a
//     declaration changes when a group appears (XINFO GROUPS), not what it
//     gets ([WithMaxLen] trims declared groups' entries too). A broadcast
//     subscriber's group starts at the end ("$"): it gets what is published
//     while it lives, and Unsubscribe destroys it. A broadcast subscriber
//     whose process dies without Unsubscribe leaves its group behind (XINFO
//     GROUPS shows it; XGROUP DESTROY removes it).
//   - A subscription reads with XREADGROUP and holds (read, not yet
//     settled) about 100ms of handling at the rate its handlers go, at least
//     twice its Concurrency and at most [WithPrefetch] (1024 by default),
//     reading again once half is settled; it acknowledges handled entries
//     with XACK, in batches (those handled within 2ms of each other).
//   - A handler error schedules the message again: one Lua script
//     acknowledges the entry and adds the message, with its attempt counted,
//     to the group's delay set, scored with its due time on the server's
//     clock. The members of the group move due messages to the group's redo
//     stream (a script too), from which the group reads them like new
//     entries. So a nacked message never blocks the entries behind it, and a
//     crash at any step leaves it either pending or scheduled, never lost.
//   - An entry left pending for longer than [broker.AckWait] (its consumer
//     crashed, or lost its connection) is taken over by another member of its
//     group (XAUTOCLAIM), or by the restarted consumer. A subscription resets
//     the idle time of the entries it holds every AckWait/3 (XCLAIM JUSTID),
//     so a slow handler keeps its entry.
//   - Attempt is the entry's delivery count (from XPENDING when taken over),
//     plus the attempts carried by a redelivered message.
//   - After MaxAttempts, or for a [broker.Permanent] error, the message goes to
//     the dead-letter topic's stream (a plain XADD), and only then is the
//     entry acknowledged. The dead-letter stream keeps what it gets whether
//     or not anyone subscribes, so a queue group created on it later gets
//     every dead letter still there, and [Broker.DeadLetters] reads it
//     without consuming ([broker.DeadLetterBrowser]).
//   - Unsubscribe gives back at once, through the redo stream, the entries it
//     read but did not hand to a handler, and after a drain that ran out of
//     time, the entries in flight (their attempt counted).
//   - Order: one publisher's messages reach a Concurrency(1) member in order,
//     redeliveries aside.
//   - [WithMaxLen] trims each stream to about that many entries (XADD MAXLEN
//     ~): entries are trimmed whether or not every group has read them. By
//     default streams are not trimmed and grow until trimmed by hand.
//
// The broker reconnects by itself: go-redis dials again for each command,
// and the subscriptions' loops retry with a backoff. A consumer group that
// vanished (the stream was deleted, or the server restarted without its
// data) is created again.
//
// # Server settings
//
// Herald needs Redis 6.2 or later (XAUTOCLAIM), 7 recommended, and, to lose
// nothing across a restart or a crash:
//
//	appendonly yes
//	appendfsync always
//
// Use your own server by passing its URL: redis://user:password@host:6379/0,
// or rediss:// for TLS.
//
// # URLs
//
// [OpenURL] opens "redis://[user:password@]host[:port][/db]" and "rediss://…"
// (TLS), with the query parameters maxlen, prefix, prefetch,
// publish_timeout, block and max_message_size (see [OpenURL]). Unknown
// parameters are errors. Register it on a [broker.URLMux] under [Scheme] and
// [SchemeTLS].
package redis
