// Package rabbitmq is a [broker.Broker] on RabbitMQ, through the official
// client github.com/rabbitmq/amqp091-go.
//
//	b, err := rabbitmq.New(ctx, "amqp://guest:guest@127.0.0.1:5672/")
//
// # Layout
//
// The broker publishes to one durable topic exchange ("herald" by default,
// see [WithExchange]) with the topic as routing key. Each queue group is one
// durable queue, exchange + ":" + topic + ":" + group
// ("herald:user.registered:email"), bound to the topic: quorum by default,
// classic with [WithQueueType]. Each broadcast subscriber has an exclusive,
// auto-deleted classic queue of its own (exchange + ":" + topic + ":~" + a
// random ID). Names longer than AMQP allows (255 bytes) are cut and end with
// a hash.
//
// Each subscription also declares the durable queue of [DeadLetterGroup] on
// its dead-letter topic (e.g. "herald:user.registered.dlq:dlq"): a topic
// exchange drops a message no queue is bound to, so this queue keeps the
// dead letters until someone reads them, with broker.Queue(DeadLetterGroup),
// or browses them with [Broker.DeadLetters] ([broker.DeadLetterBrowser]).
//
// [Broker.DeclareGroup] ([broker.GroupDeclarer]) declares a group's queue,
// bound to its topic, and the [DeadLetterGroup] queue of the topic's
// default dead-letter topic, with the arguments Subscribe gives them,
// without consuming: the group keeps what is published from then on.
//
// Redeliveries wait in retry queues, named after the queue they return to
// with ":retry-<ms>ms", one per delay bucket (10ms, 25ms, 50ms, 100ms …
// 24h, steps of at most 2.5×): every message of a retry queue has the same
// time to live (x-message-ttl), so they expire in order, from the head, on
// time, and go back to their queue by dead-lettering through the default
// exchange. A retry queue is declared when first needed; a queue group's are
// durable, a broadcast subscriber's exclusive. They are classic queues, even
// for quorum groups: a quorum queue with a message TTL and no consumer can
// keep expired messages for good when it dead-letters at least once
// (rabbitmq-server#10718; one conformance run here, on 3.10.8 under heavy
// load, saw 500 redeliveries stay in such a queue for 20s). The cost: the
// server moves an expired message back to its queue without confirms, and
// a classic queue lives on one node of a cluster.
//
// # Delivery semantics
//
// Delivery is at least once, as [broker] describes, with these engine
// specifics:
//
//   - Publish returns once the server confirmed the message (publisher
//     confirms): it is in every queue bound to the topic, on disk for
//     durable queues (messages are persistent). Concurrent publishes share a
//     few confirm-mode channels ([WithPublishChannels]) without waiting for
//     each other; [Broker.PublishBatch] publishes a batch without waiting
//     for each confirm, then waits for them all. Publish retries while the
//     server is unreachable, so a retry after a lost confirm may deliver a
//     message twice, with its ID.
//   - A topic no queue is bound to drops what is published to it (the
//     server still confirms). A queue group gets what is published after its
//     queue was first declared (its first Subscribe, or
//     [Broker.DeclareGroup]), including while it has no member: a publisher
//     declares the groups that consume its events at start
//     ([broker.GroupDeclarer]), so that nothing it publishes before their
//     first Subscribe is dropped. A broadcast subscriber gets what is
//     published while its queue lives, and its queue goes with its
//     connection.
//   - Consumers acknowledge manually; the QoS prefetch count of a
//     subscription is [WithPrefetch] (256 by default), at least twice its
//     Concurrency. A message whose consumer
//     died (connection or channel closed) goes back to its queue as soon as
//     the server notices: at once on a closed socket, within two heartbeats
//     ([WithHeartbeat]) otherwise. [broker.AckWait] is not used: RabbitMQ
//     has no per-delivery ack deadline (its consumer_timeout, 30 minutes by
//     default, closes a channel that holds a delivery longer).
//   - A handler error publishes a copy of the message, with its attempt
//     counted in a "herald-attempt" header, to the retry queue of the
//     backoff's bucket (the smallest not shorter than the backoff), waits for
//     the confirm, then acknowledges the original. The queue is never
//     blocked by a message waiting for its redelivery. If the copy cannot be
//     published, the original is requeued at once instead.
//   - Attempt is the "herald-attempt" of the copy (1 for the original), plus
//     the server's redeliveries of it: x-delivery-count on quorum queues, 1
//     when the redelivered flag is set on classic queues.
//   - After MaxAttempts, or for a [broker.Permanent] error, the dead letter
//     ([broker.NewDeadLetter]) is published to the dead-letter topic through
//     the exchange, with a confirm, and only then is the original
//     acknowledged; if that publish fails the message is redelivered instead.
//   - Unsubscribe cancels the consumer, waits for the handlers in flight and
//     closes the channel, which gives the messages prefetched but not handled
//     back to the queue (their redelivered flag is then set, so Attempt counts
//     them on classic queues too).
//   - Order: one publisher's messages reach a Concurrency(1) member of a
//     group in order, redeliveries aside.
//
// The broker keeps two connections, one to publish and one to consume, and
// opens them again (declaring the exchange) whenever they are lost, with a
// backoff from 50ms to 2s. Subscriptions declare their queues again and
// consume again on the new connection. A message confirmed before the loss
// is in a durable queue and survives it, and a server restart.
//
// # Server settings
//
// Quorum queues need RabbitMQ 3.8 or later; use [Classic] on older
// servers. Nothing else needs configuring; point Herald at your own server
// with its URL (the tests ran against 3.10.8).
//
// # URLs
//
// [OpenURL] opens "amqp://user:password@host[:port][/vhost]" and
// "amqps://…" (TLS), with the query parameters exchange, queue_type,
// queue_expiry, prefetch, publish_channels, max_pending, publish_timeout,
// max_message_size and heartbeat (see [OpenURL]). Unknown parameters are
// errors. Register it on a [broker.URLMux] under [Scheme] and [SchemeTLS].
package rabbitmq
