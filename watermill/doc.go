// Package watermill adapts Herald brokers to Watermill
// (github.com/ThreeDotsLabs/watermill): a [Publisher] and a [Subscriber]
// that implement Watermill's message.Publisher, message.Subscriber and
// message.SubscribeInitializer over any Herald [broker.Broker], so that a
// Watermill router runs on NATS JetStream, RabbitMQ, Redis, the HTTP broker
// or any other Herald backend, with Herald's delivery guarantees.
//
// The package lives in its own Go module so that Watermill and its
// dependencies stay out of Herald's core module. Its tests run Watermill's
// own universal Pub/Sub suite (pubsub/tests) against Herald's backends: a
// suite written outside this project, which found losses in Herald before
// its W2-1 fixes (a group's messages published before its first member, a
// departed member's leftovers).
//
// # Mapping
//
//   - A Watermill message's UUID is the Herald message ID, its metadata the
//     headers, its payload the body. Herald backends may drop a message
//     published again with an ID they accepted recently (see
//     [broker.Broker]): publishing one Watermill message twice delivers it
//     once on such backends.
//   - Every subscriber joins a Herald queue group: [SubscriberConfig.Group],
//     Watermill's consumer group, or [DefaultGroup]. Subscribers of one
//     group share the topic's messages; each group gets every message.
//     Groups are durable where the backend persists, so a message published
//     while no subscriber runs waits for the next one.
//     [Subscriber.SubscribeInitialize] declares the group with
//     [broker.DeclareGroup], so that what is published before the first
//     Subscribe is kept.
//   - Ack acknowledges the delivery; Nack, a cancelled Subscribe context or
//     Close before Ack has it delivered again after the subscription's
//     backoff ([SubscriberConfig.Backoff]). Watermill expects a nacked
//     message to come back until it is acknowledged, so the default
//     [SubscriberConfig.MaxAttempts] is high ([DefaultMaxAttempts]); lower
//     it to have Herald dead-letter poison messages instead of Watermill's
//     poison-queue middleware.
//   - Each Subscribe call delivers one message at a time on its channel, in
//     the backend's order: the next message comes once the previous one is
//     acknowledged or nacked, as Watermill's contract says.
//   - A message's context carries the values of the Subscribe context and
//     is cancelled once the message is acknowledged or nacked, or the
//     subscription ends.
package watermill
