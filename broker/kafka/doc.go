// Package kafka is Herald's [broker.Broker] on Apache Kafka, built on the
// franz-go client (github.com/twmb/franz-go: kgo, and kadm for topics).
//
//	b, err := kafka.New(ctx, []string{"127.0.0.1:9092"})
//	…
//	err = b.Publish(ctx, "user.registered", &broker.Message{Body: body})
//	sub, err := b.Subscribe(ctx, "user.registered", handle, broker.Queue("email"))
//
// A [Broker] is safe for concurrent use. It is tested against franz-go's
// in-process cluster, kfake, including a restart on the same data.
//
// # Names
//
// A Herald topic is the Kafka topic of the same name, created on first use
// with [WithPartitions] partitions (default [DefaultPartitions]), the
// cluster's replication factor (see [WithReplicationFactor]),
// max.message.bytes of [WithMaxMessageBytes] and message.timestamp.type
// LogAppendTime (so a message's PublishedAt is the cluster's clock). Topics
// that exist are used as they are.
//
// Queue group q on topic t is the Kafka consumer group "q~t": Kafka groups
// are cluster-wide, Herald's belong to a topic. Its redeliveries go through
// the retry topic "herald-retry.q.t" (cut to Kafka's 249 bytes with a hash
// when longer); topics whose name starts with "herald-retry." are reserved.
//
// # Delivery semantics
//
// Delivery is at least once, as the broker package describes, with these
// Kafka specifics:
//
//   - Publish returns nil once every in-sync replica has the record
//     (acks=all) through the idempotent producer, and honours ctx (on ctx's
//     end it returns at once; a record already sent may still be stored).
//     [Broker.PublishBatch] produces a whole batch and waits once.
//   - The record key is the [broker.Key] publish option or, without one, the
//     message ID, which spreads messages over the partitions. Order is kept
//     per key: records of one partition with the same key are handled one
//     after the other even with [broker.Concurrency] above 1, records with
//     different keys in parallel. One publisher's messages without a Key
//     are not ordered (they land on different partitions). Redeliveries come
//     back out of order.
//   - The message travels as the record value; its headers as record
//     headers, with its ID in herald-id. A record produced by something other
//     than Herald is delivered with the ID "<topic>/<partition>/<offset>".
//   - A queue group is a consumer group with the range balancer (each member
//     owns the same partitions of the topic and of its retry topic), manual
//     commits and rebalances held while a fetched batch is queued. A group
//     that never committed starts at the beginning of the topic, as far back
//     as the topic's retention (as the NATS backend's DeliverAll), so a
//     group misses nothing published before its first member joined;
//     [Broker.DeclareGroup] ([broker.GroupDeclarer]) creates the topic and
//     the group's retry topic ahead, and commits nothing. Subscribe
//     returns once the member has partitions. A member handles up to
//     Concurrency records at once from a queue of fetched records
//     ([WithPrefetch]); the offset committed for a partition is the first one
//     not done with, so nothing is committed before its handler acknowledged
//     it, with any concurrency.
//   - A handler error does not block its partition: the record is produced
//     to the group's retry topic with headers herald-attempt (Attempt+1) and
//     herald-not-before (now plus the backoff's delay), and its offset is
//     committed once that produce is acknowledged. The group consumes its
//     retry topic too; a redelivery waits, off the queue, until it is due, so
//     later ones are not held up. After MaxAttempts, or for a
//     [broker.Permanent] error, the dead letter is produced to the
//     dead-letter topic (a Herald topic, "<topic>.dlq" by default), then the
//     offset committed; if that produce fails the message is retried instead.
//     Kafka has no native dead-letter queue: this is Herald's.
//   - A member that loses partitions in a rebalance stops their queued
//     records, waits for their running handlers up to [WithRevokeGrace],
//     commits and lets them go; a handler still running then is not
//     committed and the next owner gets its message again.
//   - Unsubscribe and Close stop fetching, drop the records fetched but not
//     started (the group fetches them again), wait for the handlers in
//     flight (bounded by ctx), commit and leave the group. A handler that
//     outlives ctx is handed to the rest of the group: its record is produced
//     to the retry topic as the next attempt, due at once. A crashed member's
//     uncommitted records are delivered again by Kafka with the same Attempt:
//     Kafka does not count deliveries, so Attempt counts Herald's
//     redeliveries only.
//   - A broadcast subscriber reads every partition of the topic directly,
//     without a group, from the end offsets at Subscribe (partitions added
//     later are not read). Its redeliveries are held in memory, as the
//     subscriber itself is not durable.
//   - Delivery has no AckWait: Kafka cannot redeliver a record while its
//     member lives. A handler that never returns holds its partition's
//     commit (not its other records) until the member leaves.
//   - Records over [WithMaxMessageBytes] (body, key and headers; 1 MiB body
//     by default) are refused with [broker.ErrTooLarge].
//
// # URLs
//
// [OpenURL] opens "kafka://" URLs:
//
//	kafka://127.0.0.1:9092                    one seed broker (port 9092 when omitted)
//	kafka://k1:9092,k2:9092,k3:9092           several
//	kafka://user:pass@k1:9093?tls=true&sasl=scram-sha-512
//
// Query parameters: partitions, replication, max_message_bytes (integers,
// see the options of the same names), heartbeat and session_timeout (Go
// durations, see [WithGroupTiming]), tls (true: TLS with the system's
// roots), sasl (plain, the default with a user, scram-sha-256 or
// scram-sha-512). Unknown parameters are an error.
package kafka
