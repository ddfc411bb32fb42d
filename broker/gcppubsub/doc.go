// Package gcppubsub is Herald's [broker.Broker] on Google Cloud Pub/Sub,
// built on the official client (cloud.google.com/go/pubsub/v2).
//
//	b, err := gcppubsub.New(ctx, "my-project")
//	…
//	err = b.Publish(ctx, "user.registered", &broker.Message{Body: body})
//	sub, err := b.Subscribe(ctx, "user.registered", handle, broker.Queue("email"))
//
// A [Broker] is safe for concurrent use. It is tested against the official
// in-process fake, cloud.google.com/go/pubsub/v2/pstest.
//
// # Names
//
// Herald topic t is Pub/Sub topic "<prefix>t", "herald.t" with the default
// prefix (see [WithPrefix]): Herald's topic characters are all valid in
// Pub/Sub IDs, and the prefix makes every ID start with a letter. Queue group
// q on t is the subscription "<prefix>t~q", shared by every member; a
// broadcast subscriber has a subscription of its own, "<prefix>t~~<random>",
// deleted by Unsubscribe (and by Pub/Sub a day after its subscriber vanished,
// its expiration policy). IDs longer than Pub/Sub's 255 characters are cut
// and end with a hash. Topics and subscriptions are created when missing;
// existing ones are used as they are, but for a group's subscription made
// by [Broker.DeclareGroup] ([broker.GroupDeclarer]): a Pub/Sub topic keeps
// a message only for the subscriptions it has when the message is
// published, so a publisher declares the groups that consume its events at
// start. The declared subscription has the default options' settings and
// the label "herald-declared"; the group's first Subscribe sets its own
// (ack deadline, dead-letter and retry policies) and removes the label.
//
// # Delivery semantics
//
// Delivery is at least once, as the broker package describes, with these
// Pub/Sub specifics:
//
//   - Publish returns nil once Pub/Sub has stored the message and honours
//     ctx. [Broker.PublishBatch] publishes a whole batch through the client's
//     batching publisher and waits once. The [broker.Key] option is the
//     ordering key; subscriptions are created with message ordering, so
//     messages with one key are delivered in publish order. Messages without
//     a key are not ordered.
//   - The body is the message data; headers are attributes, with the ID in
//     herald-id. Headers Pub/Sub cannot carry as attributes (names over 256
//     bytes or starting with "goog", values over 1,024 bytes such as a long
//     dead-letter reason, text that is not UTF-8, headers beyond the 80th)
//     travel packed, in order, in herald-hdr-0, herald-hdr-1… and arrive byte
//     for byte. PublishedAt is Pub/Sub's publish time.
//   - Subscriptions are created with an ack deadline of the subscription's
//     AckWait (within Pub/Sub's 10 to 600 s). While a handler runs, the
//     client extends the message's deadline (MaxExtension one hour, each
//     extension at most the ack deadline), so a message is redelivered only
//     when its subscriber stopped answering for about the ack deadline.
//   - A subscriber runs up to [broker.Concurrency] handlers at once and lets
//     Pub/Sub send it twice that many messages (MaxOutstandingMessages): the
//     others wait for a handler or for a redelivery's delay. It opens one
//     streaming pull per handler, up to 8 (see [WithReceiveStreams]).
//   - A handler error nacks the message after the backoff's delay: the
//     subscriber holds the message (its lease extended) for the delay, then
//     nacks it, and Pub/Sub redelivers it at once. With [WithServerBackoff]
//     the subscriber nacks at once and Pub/Sub waits, by the subscription's
//     retry policy. pstest ignores retry policies, so only the default is
//     tested.
//   - [broker.Message.Attempt] is Pub/Sub's delivery attempt. Pub/Sub counts
//     attempts only on subscriptions with a dead-letter policy, so the
//     broker creates them with one: forwarding to the Pub/Sub topic of the
//     Herald dead-letter topic after MaxAttempts+1 deliveries (Pub/Sub's
//     bounds: 5 to 100). Herald dead-letters first, after MaxAttempts, with
//     its reason headers; the native policy is the safety net for a message
//     that never reaches a decision (its handler crashes the process), and
//     forwards the message as it is. For Pub/Sub to forward, its service
//     account needs the publisher role on the dead-letter topic and the
//     subscriber role on the subscription. Without the policy
//     ([WithoutDeadLetterPolicy]) each subscriber process counts the
//     deliveries it sees.
//   - Dead letters are Herald's: after MaxAttempts, or for a
//     [broker.Permanent] error, [broker.NewDeadLetter] is published to the
//     dead-letter topic and the original acknowledged; if that publish fails
//     the original is nacked.
//   - Unsubscribe and Close stop pulling, nack the messages held for a delay
//     and those pulled but not started, wait for the handlers in flight
//     (bounded by ctx) and acknowledge their messages. A handler that
//     outlives ctx has its message nacked, so another member gets it, with
//     Attempt one higher.
//   - Messages over [WithMaxMessageBytes] (body and attributes; about 10 MB
//     by default) are refused with [broker.ErrTooLarge].
//
// # The pstest fake
//
// pstest supports what the conformance suite uses, with these differences
// from Pub/Sub: it ignores retry policies and flow control (a subscriber
// takes what its streams are sent), delivers about one message per stream
// every 10 ms, and counts delivery attempts per message across all the
// subscriptions of its topic rather than per subscription (so Attempt is
// only right with one subscription per topic). It keeps nothing across a
// restart, so the suite's Restart is not run.
//
// # URLs
//
// [OpenURL] opens "gcppubsub://" URLs:
//
//	gcppubsub://my-project                               Pub/Sub, default credentials
//	gcppubsub://my-project?endpoint=127.0.0.1:8085       an emulator, no credentials
//
// Query parameters: endpoint (host:port of an emulator, plaintext gRPC),
// prefix (see [WithPrefix]), server_backoff=true ([WithServerBackoff]),
// dead_letter_policy=false ([WithoutDeadLetterPolicy]), max_message_bytes
// and streams (integers, see [WithMaxMessageBytes] and [WithReceiveStreams]).
// Unknown parameters are an error. Without endpoint, PUBSUB_EMULATOR_HOST is
// honoured as by Google's client.
package gcppubsub
