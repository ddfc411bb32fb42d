// Package nats is Herald's [broker.Broker] on NATS JetStream, built on the
// official client (github.com/nats-io/nats.go/jetstream).
//
//	b, err := nats.New(ctx, "nats://127.0.0.1:4222")
//	…
//	err = b.Publish(ctx, "user.registered", &broker.Message{Body: body})
//	sub, err := b.Subscribe(ctx, "user.registered", handle, broker.Queue("email"))
//
// A [Broker] is safe for concurrent use. Package natsserver, beside this
// one, runs a NATS server with JetStream inside the process.
//
// # Names
//
// Each topic has a stream of its own, created (or updated) the first time
// the broker publishes to or subscribes to the topic. With the default
// prefix "herald" (see [WithPrefix]), topic "user.registered" is subject
// "herald.user.registered", held by stream "herald~user~registered": a stream
// name cannot contain dots, and "~" can appear in neither a topic nor a
// prefix, so the mapping is one-to-one. Streams use Limits retention with a
// max age ([DefaultMaxAge], see [WithMaxAge]), file storage (see
// [WithMemoryStorage]), a duplicate window ([DefaultDuplicateWindow]) and
// one replica (see [WithReplicas] and # Clusters).
//
// A queue group is a durable pull consumer named after the group on the
// topic's stream, created by the group's first Subscribe or, before any
// member joins, by [Broker.DeclareGroup] (the [broker.GroupDeclarer]
// capability): a publisher that declares the groups consuming its topic
// at start makes the stream keep what it publishes for them, even before
// their first member ever subscribed. A broadcast subscriber is an
// ephemeral pull consumer, deleted when it unsubscribes (or by the server a
// minute after its subscriber vanished).
//
// # Delivery semantics
//
// Delivery is at least once, as the broker package describes, with these
// NATS specifics:
//
//   - Publish returns nil once JetStream has stored the message (its PubAck)
//     and honours ctx. [Broker.PublishBatch] publishes asynchronously, up to
//     [WithMaxPending] messages awaiting their PubAck, and returns once all
//     are stored: use it (or [broker.PublishBatch]) for throughput.
//   - The message ID is sent as Nats-Msg-Id, so JetStream drops a
//     re-publish of an ID it stored within the duplicate window (what an
//     outbox relay that retries wants) and Publish still returns nil. A
//     replay of a dead letter (header [broker.HeaderReplayedAt]) and a dead
//     letter itself are published under a Nats-Msg-Id of their own (the ID
//     plus "/replay/…" or "/dlq/…"), so the window never swallows them;
//     they are delivered with their original ID.
//   - A new queue group starts at the beginning of the stream
//     (DeliverAll): the events published before its first member ever joined
//     are delivered to it, as far back as the stream's max age. A broadcast
//     subscriber gets the messages published after it subscribed
//     (DeliverNew).
//   - Acknowledgement is explicit. A handler error is a Nak with the
//     backoff's delay (NakWithDelay); a dead letter is published to the
//     dead-letter topic and the original then terminated (Term), or Nak-ed
//     if that publish failed. [broker.Message.Attempt] is JetStream's
//     delivery count and [broker.Message.PublishedAt] its timestamp.
//     The consumer's MaxDeliver is MaxAttempts plus 10, a safety net for
//     deliveries that never reach a decision.
//   - A subscriber runs up to [broker.Concurrency] handlers at once and
//     pulls for its free handlers plus a prefetch (see [WithPrefetch]), so
//     handlers do not wait for a round trip. It sends JetStream's pull
//     requests itself, one at a time (two would deliver out of order), on
//     an inbox of its own that every pull reuses, with an idle heartbeat: a
//     pull the server lost (a reconnection, heartbeats missed) is abandoned
//     and the inbox replaced, and a consumer the server lost is recreated.
//     While a handler runs, or a prefetched message waits for one, the
//     broker sends JetStream "in progress" every quarter of the AckWait: a
//     message is redelivered only when its subscriber stopped answering for
//     an AckWait. Acknowledgements leave in groups, within half a
//     millisecond. (nats.go's Consume is not used: what it prefetches is out
//     of reach of such heartbeats, and with a batch of one or two it can
//     stop pulling until its heartbeat times out. Nor is its Fetch: its
//     inbox, one per pull, is unsubscribed in the background, so the server
//     could hand the next message to a member that had left.)
//   - Headers travel as NATS headers, byte for byte: names NATS would refuse
//     or interpret (Nats-*), and values it would alter (surrounding spaces,
//     CR, LF), are carried escaped in a reserved header.
//   - The connection reconnects forever with backoff; publishes in flight
//     are retried within their context, and subscriptions resume after a
//     server restart, recreating a consumer the server lost (a broadcast
//     subscriber resumes after the last message it got).
//   - Messages larger than the server's max payload (headers included) are
//     refused with [broker.ErrTooLarge]. NATS defaults to 1 MiB; the
//     embedded server takes 8 MiB.
//   - Close and Unsubscribe stop pulling, unsubscribe the pulls' inbox and
//     flush: when they return, the server hands the subscriber nothing more,
//     so a group's next message goes at once to a member that is there, not
//     to the one that left (exactly so on a single server; in a cluster the
//     consumer's leader learns of it over a route, a moment later). They
//     give the messages pulled but not started, and those still on their
//     way, back to JetStream at once (Nak), wait for the handlers in flight
//     (bounded by ctx), and then Close closes the connection (unless it
//     came from [WithConn]) and the embedded server.
//
// # URLs
//
// [OpenURL] opens "nats://" URLs:
//
//	nats://127.0.0.1:4222                  a NATS server (user:password@ accepted)
//	nats://a:4222,b:4222,c:4222?replicas=3 a cluster: any of its servers, streams
//	                                       kept on three of them
//	nats://                                an embedded server for the broker's life,
//	                                       data in a temporary directory
//	nats://?dir=.herald/nats               an embedded server keeping its data in dir
//
// Several servers are separated by commas after one scheme; the URL's
// user and password go to each. The client dials one of them, and another
// when that one is gone.
//
// Query parameters: storage=file|memory (streams' storage), max_age=72h
// (streams' max age, 0 for none), prefix=herald (see [WithPrefix]),
// replicas=1..5 (copies of each stream in a JetStream cluster, see
// [WithReplicas]; more than 1 needs a cluster of that many servers, so not
// the embedded one), dir=path (embedded server only). Any other parameter
// is an error.
//
// # Clusters
//
// With replicas=3 on a cluster of three servers (three `herald serve
// broker` with --cluster-listen and --routes, or any NATS cluster with
// JetStream), every stream and consumer the broker makes has a copy on
// each server, and the loss of one server loses nothing: JetStream elects
// another leader for its streams and consumers within seconds, a publish
// in flight meanwhile is retried until the new leader stores it (its
// Nats-Msg-Id keeps a retry from storing it twice), and subscriptions go on
// pulling from the new leader. A stream that exists with fewer replicas is
// scaled up (or, if the cluster refuses, used as it is with a warning); one
// with more is kept (see [WithReplicas]). While fewer than
// the replicas' majority of servers are up, the streams take no publishes;
// a new stream cannot be created until as many servers as its replicas are
// up.
package nats
