// Package gomicro is a Go Micro (go-micro.dev/v5) broker plugin over any
// Herald broker: an existing Go Micro service gets Herald's delivery
// guarantees, on NATS JetStream or any other Herald backend, by changing one
// option:
//
//	service := micro.NewService(
//		micro.Name("user"),
//		micro.Broker(gomicro.New(heraldBroker)), // the one line
//	)
//
// [New] wraps a Herald broker the caller opened and keeps; [NewURL] opens one
// by URL through a Herald broker.URLMux on Connect and closes it on
// Disconnect. The plugin lives in its own Go module so that Go Micro and its
// dependencies stay out of Herald's core module.
//
// # Delivery semantics
//
// Herald's, through the go-micro API:
//
//   - Publish returns nil only once the backend durably accepted the message
//     (a JetStream PubAck for NATS); otherwise it returns the error. It is
//     bounded by go-micro's PublishContext, or by [WithPublishTimeout].
//     Headers (go-micro's Message.Header) and body arrive byte for byte.
//   - Subscribe with go-micro's Queue(name) joins a Herald queue group: each
//     message is handled by one member (competing consumers), and a durable
//     backend keeps the group's messages while no member runs. Without Queue
//     the subscriber gets every message published while it lives
//     (broadcast), as Go Micro documents.
//   - A handler that returns nil acknowledges the message. One that returns
//     an error, or panics, has it delivered again after an exponential
//     backoff with jitter, up to the subscription's max attempts (Herald's
//     defaults: 5 attempts, from 100 ms), and then published to the
//     dead-letter topic, topic + ".dlq", with the reason in its headers. An
//     error wrapped by Herald's broker.Permanent goes there at once.
//   - With go-micro's DisableAutoAck, Event.Ack acknowledges for real: the
//     message is done once the handler returns. A handler that returns
//     without calling Ack (allowing [WithAckGrace] for a late one) has its
//     message delivered again, as if it had failed with [ErrNotAcked].
//     Event.Error reports why a delivery failed, and go-micro's ErrorHandler
//     option is called with each failed delivery's event.
//   - Delivery is at least once: a message may come again after a failure or
//     a crash. [Delivery] gives the Herald message ID (the same on every
//     redelivery) and attempt number of an event, for idempotent handlers.
//   - Subscriber.Unsubscribe and Disconnect stop fetching and wait for the
//     handlers in flight ([WithDrainTimeout]); deliveries cut short are
//     redelivered.
//   - A new subscription holds its first deliveries for [WithStartDelay]
//     (250 ms): Go Micro's server registers a subscriber with its router only
//     after Subscribe returns, and acknowledges — drops — what arrives before.
//
// Herald options that Go Micro has no words for (max attempts, backoff,
// concurrency, dead-letter topic, ordering key) travel in go-micro's
// SubscribeContext and PublishContext: see [ContextWithSubscribeOptions],
// [SubscribeWith], [ContextWithPublishOptions], [PublishWith], and
// [WithSubscribeDefaults] for a whole service.
//
// # Names
//
// Topics are Herald topics: dot-separated tokens of letters, digits, '-' and
// '_' ("user.registered", "go.micro.topic.foo"); Publish and Subscribe
// refuse others with an error wrapping Herald's broker.ErrBadTopic. Queue
// names that Herald would refuse (a dotted "go.micro.srv.email") are mapped
// to valid group names by [QueueName]. Header names starting with "herald-"
// are Herald's.
//
// # URLs
//
// [NewURL] takes any URL the given mux has a backend for ("mem://",
// "nats://127.0.0.1:4222", …); see Herald's backends for their query
// parameters. go-micro's Addrs option (and --broker_address flag) replaces
// it. [Broker.Address] reports it with the password hidden.
//
// A [Broker] is safe for concurrent use. Handlers of one subscription run
// one at a time unless herald.Concurrency says otherwise.
package gomicro
