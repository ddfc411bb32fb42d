// Package broker is Herald's messaging contract: the [Broker] interface every
// backend implements, the [Message] it carries, the [Handler] that consumes it,
// and the options, errors and delivery rules they share.
//
// The package depends on the standard library only. Backends live in their
// own packages (broker/mem, broker/nats, …) and hold only what is specific to
// their engine; the rules below are implemented once, here, and proven for
// every backend by the conformance suite in broker/brokertest.
//
// # Delivery semantics
//
// Delivery is at least once.
//
//   - [Broker.Publish] returns nil only once the backend has durably accepted
//     the message (a JetStream ack, a publisher confirm, a spool fsync…). It
//     honours its context: a cancelled context returns the context's error and
//     the caller must assume the message was not sent.
//   - [Broker.Subscribe] with [Queue] joins a queue group: each message is
//     handled by exactly one member of the group (competing consumers). Groups
//     are durable where the backend persists: messages published while the
//     group has no live member are delivered when one joins. A group exists
//     from its first member's Subscribe, or earlier from [DeclareGroup]: a
//     publisher declares the groups that consume its events at start, so
//     that what it publishes before their first Subscribe is kept for them.
//     Two groups on one topic each get every message.
//   - Without [Queue], the subscription is a broadcast subscriber: it gets
//     every message published while it lives.
//   - A [Handler] that returns nil acknowledges the message. One that returns
//     an error negatively acknowledges it: the message is delivered again, with
//     [Message.Attempt] one higher, after an exponential [Backoff] with jitter.
//     After [MaxAttempts] attempts, or at once when the error is [Permanent],
//     the message goes to the dead-letter topic (see [DeadLetterTo] and
//     [DefaultDeadLetterTopic]) with
//     its original headers and body plus the reason, the attempt count and the
//     original topic (see [HeaderDeadLetterReason] and its siblings).
//   - A handler that panics is recovered; the panic counts as an error.
//   - [Subscription.Unsubscribe] and [Broker.Close] stop fetching, let the
//     handlers in flight finish (bounded by their context), then return.
//     Publish after Close returns [ErrClosed].
//   - When the context of Close or Unsubscribe ends before the handlers in
//     flight finish, the call returns an error wrapping the context's error;
//     the handlers' own contexts are not cancelled by the wait, and their
//     deliveries are abandoned: a durable group gets them again (on another
//     member) once [AckWait] has passed.
//   - Subscribe returns once the subscription is live: a message published
//     after Subscribe returns is delivered to it. A cancelled context makes
//     Subscribe fail with an error wrapping the context's error.
//   - A redelivery keeps the message's ID, headers, body and PublishedAt.
//   - Unsubscribe after the broker's Close returns nil or [ErrClosed].
//   - Handlers must not modify a delivered message's Header or Body: a
//     backend may share them between groups and redeliveries.
//
// Backends apply these rules through [Process], so the decision between
// acknowledging, retrying and dead-lettering is made in one place.
//
// # Topics
//
// A topic is one or more tokens separated by dots; a token is made of ASCII
// letters, digits, '-' and '_'. "user.registered" is a topic; "user..x",
// "user.*" and "user registered" are not (see [ValidateTopic]). Queue group
// names are a single token.
//
// # URLs
//
// A [URLMux] maps URL schemes to backend openers, so a program chooses its
// backend by configuration ("mem://", "nats://127.0.0.1:4222"). The mux is a
// value assembled by the program, not a global filled in by init functions.
package broker
