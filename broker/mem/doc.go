// Package mem is Herald's in-process broker backend: the whole
// [broker.Broker] contract held in memory, for tests, examples and
// single-binary deployments that do not need messages to survive the
// process.
//
//	b := mem.New()
//	defer b.Close(ctx)
//	sub, err := b.Subscribe(ctx, "user.registered", handle, broker.Queue("email"))
//	…
//	err = b.Publish(ctx, "user.registered", &broker.Message{Body: body})
//
// # Clients and the bus
//
// [New] makes a bus (the in-process equivalent of a server) and a first
// client of it. [Broker.Connect] makes more clients of the same bus, as
// separate connections to one server would be: they share topics and queue
// groups, and each has its own subscriptions and its own Close. Closing a
// client leaves the bus and its queue groups to the other clients. The
// conformance suite opens each client with Connect.
//
// # Delivery semantics
//
// Delivery is at least once, with the rules of package broker applied
// through [broker.Process]:
//
//   - Publish returns nil once a copy of the message is queued for every
//     queue group and broadcast subscriber of the topic. A topic with nothing
//     subscribed drops the message, except a dead letter (one carrying
//     [broker.HeaderDeadLetterTopic]): the bus also keeps the last
//     [MaxDeadLetters] of each dead-letter topic, for [Broker.DeadLetters]
//     and [Broker.DeleteDeadLetters] ([broker.DeadLetterBrowser]). Publish
//     never blocks on consumers.
//   - A queue group is made by the first Subscribe with [broker.Queue], or
//     by [Broker.DeclareGroup] before any member joins, and lives as long as
//     the bus: while it has no member it keeps the
//     messages published to its topic, and delivers them when a member
//     joins. Each message goes to one member.
//   - A broadcast subscriber (no Queue) gets the messages published from
//     when Subscribe returns until it unsubscribes.
//   - A handler error redelivers after the subscription's backoff, with
//     Attempt one higher (a timer per pending redelivery); after MaxAttempts,
//     or at once for a [broker.Permanent] error, the message is published to
//     the dead-letter topic and dropped. A panic counts as an error.
//   - Up to Concurrency handlers run at once per subscription. One
//     publisher's messages reach a Concurrency(1) member in publish order,
//     redeliveries aside.
//   - Unsubscribe and Close stop delivery and wait, bounded by their context,
//     for the handlers in flight, without cancelling the handlers' context.
//     When the context ends first, the handlers' context is cancelled and
//     their deliveries go back to their queue groups with Attempt one higher
//     (the handlers' outcome is then ignored), so a stuck handler loses
//     nothing; the call's error wraps the context's error.
//   - [broker.AckWait] is accepted and not used: a delivery in process cannot
//     be lost while its handler runs.
//   - Nothing survives the process. There is no size limit on messages.
//
// Deliveries share the stored copy's Header and Body with each other (every
// group, every redelivery): a handler must treat them as read-only.
//
// # Memory
//
// Queues are unbounded, so a publisher never blocks and never deadlocks
// with a handler that publishes. The price is memory: a queue group with a
// slow member, or with no member, holds every message published to its
// topic until it is handled — about 160 bytes plus the body and headers each. A queue
// group that is never joined again keeps growing for the life of the bus.
// Queues give their memory back as they drain.
//
// # URLs
//
// "mem://" opens a new, isolated broker ([OpenURL]). It takes no host, path
// or query parameter.
//
// # Performance
//
// Publish copies the message once and appends it to each group's ring
// buffer under that group's mutex; each worker takes the next message under
// the same mutex and, when the queue is empty, yields a few times before it
// parks on a condition variable (a parked worker costs the publisher a thread
// wake-up per message; a yield costs an idle worker a few microseconds).
// There is no goroutine, channel or timer per message. BenchmarkPublishConsume
// measures one publisher and one Concurrency(1) subscriber.
package mem
