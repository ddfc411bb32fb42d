// Package brokertest is the conformance suite of Herald's [broker.Broker]
// contract. Every backend proves itself by passing it, and so can a backend
// written outside this repository: the suite is exported, depends only on
// the broker package and the standard library, and says why a check failed.
//
// A backend's test calls [Run] with a function that opens a client and the
// [Features] the backend declares:
//
//	func TestConformance(t *testing.T) {
//		srv := startServer(t) // an in-process server on a random port
//		brokertest.Run(t, func(t *testing.T) broker.Broker {
//			b, err := mybackend.New(mybackend.WithURL(srv.URL()))
//			if err != nil {
//				t.Fatal(err)
//			}
//			return b
//		}, brokertest.Features{
//			Persistent:          true,
//			OrderedPerPublisher: true,
//			Restart:             func(t *testing.T) { srv.Restart(t) },
//			Skip:                map[string]string{"BinaryBodies": "reason, with a link to the issue"},
//		})
//	}
//
// Each behaviour is its own subtest (see [Behaviours] for the list), so one
// can be run alone with go test -run 'TestConformance/QueueGroupSpread'.
//
// # Clients
//
// open must return a new client each time it is called: its own connection
// to one backend that every call shares. The suite calls it several times in
// most subtests and publishes through one client while it subscribes
// through others, each queue-group member on a client of its own. That is
// how the backend is used by services: the publisher and each consumer are
// separate processes. It is what makes some checks meaningful on a networked
// backend: a consumer that closes its client (its process exits) leaves its
// queue group's messages for the next consumer; a client that closes with a
// handler stuck loses the delivery to another member, not to nowhere; a
// message published through one connection reaches subscriptions made on
// another. An in-process backend offers the same through handles on one
// shared state (broker/mem's Connect).
//
// The suite closes every client it opens and unsubscribes every subscription
// it makes, when the subtest ends.
//
// # Isolation and timing
//
// Every subtest uses topic and queue group names of its own, with a random
// part, so subtests never see each other's messages even on a server kept
// between runs. Queue group names are unique too, because some engines name
// groups globally rather than per topic.
//
// The suite does not sleep to synchronise: it waits for what must happen,
// polling with a deadline ([Features.Timeout]), and fails when it does not.
// Waits for many messages fail when the count stops growing, so a slow
// backend passes as long as it makes progress. Checks that nothing more
// happens (no duplicate, no delivery after Unsubscribe, a call still blocked)
// watch a bounded quiet period, [Features.SettleTime]. Subscriptions get a
// fast retry backoff (5ms to 50ms) and, where a lost delivery must come back,
// [Features.AckWait].
//
// # What is checked
//
// Delivery: ID, headers and body kept byte for byte (empty, binary, the
// largest size promised); Topic, Attempt and PublishedAt set; generated IDs
// unique; caller IDs kept; Publish keeps no reference to the caller's
// message; [broker.PublishBatch] with or without the backend's
// [broker.BatchPublisher].
//
// Routing: queue groups (one member per message, spread across members,
// members leaving, durable groups), broadcast subscribers, several groups
// and broadcast subscribers on one topic, Unsubscribe.
//
// Groups around the moments they have no member: a member that leaves and
// one that joins get the next message promptly (nothing the departed member
// left behind holds it for an AckWait); a group left by the client that
// publishes, and a publisher that never saw the group, lose nothing; a group
// declared with [broker.DeclareGroup] keeps what is published before its
// first member joins.
//
// Failures: nack and redelivery with Attempt+1 after the backoff, dead
// letters after MaxAttempts and for [broker.Permanent] errors with every
// dead-letter header, panics, retries under load.
//
// Lifecycle: Unsubscribe and Close drain handlers in flight, bounded by
// their context; a delivery abandoned by a Close that ran out of time goes to
// another member; idempotent Close and Unsubscribe; ErrClosed after Close;
// cancelled contexts; invalid names and options.
//
// Load: concurrency limits reached and respected, many publishers and
// subscribers with exact counts, 10,000 messages with none lost or
// duplicated, order per publisher, and a server restart mid-stream with every
// acknowledged message delivered.
//
// At-least-once delivery allows duplicates, but only for a reason: the suite
// fails on a duplicate where nothing was nacked and nothing crashed, and
// counts and logs the duplicates where something was.
package brokertest
