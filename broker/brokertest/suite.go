package brokertest

import (
	"context"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
)

// behaviour is one conformance check, run as its own subtest.
type behaviour struct {
	name string
	run  func(e *env)
}

// behaviours lists the suite in the order Run runs it.
func behaviours() []behaviour {
	return []behaviour{
		// delivery.go
		{"RoundTrip", testRoundTrip},
		{"Headers", testHeaders},
		{"BinaryBodies", testBinaryBodies},
		{"CallerID", testCallerID},
		{"UniqueIDs", testUniqueIDs},
		{"PublishDoesNotKeepMessage", testPublishDoesNotKeepMessage},
		{"PublishBatch", testPublishBatch},
		// groups.go
		{"QueueGroupOnePerMessage", testQueueGroupOnePerMessage},
		{"QueueGroupSpread", testQueueGroupSpread},
		{"QueueGroupMemberLeaves", testQueueGroupMemberLeaves},
		{"Broadcast", testBroadcast},
		{"TwoQueueGroups", testTwoQueueGroups},
		{"BroadcastAndQueueGroup", testBroadcastAndQueueGroup},
		{"DurableQueueGroup", testDurableQueueGroup},
		{"DurableQueueGroupAfterClose", testDurableQueueGroupAfterClose},
		// durable.go
		{"QueueGroupRejoin", testQueueGroupRejoin},
		{"DurableGroupLeftByPublisher", testDurableGroupLeftByPublisher},
		{"DurableGroupNewPublisher", testDurableGroupNewPublisher},
		{"DeclaredGroup", testDeclaredGroup},
		{"UnsubscribeStopsDelivery", testUnsubscribeStopsDelivery},
		{"SubscriptionAccessors", testSubscriptionAccessors},
		// failures.go
		{"NackRedelivers", testNackRedelivers},
		{"MaxAttemptsDeadLetter", testMaxAttemptsDeadLetter},
		{"PermanentDeadLetter", testPermanentDeadLetter},
		{"PanicRedelivers", testPanicRedelivers},
		{"PanicDeadLetter", testPanicDeadLetter},
		{"RetryUnderLoad", testRetryUnderLoad},
		// lifecycle.go
		{"UnsubscribeWaitsForHandler", testUnsubscribeWaitsForHandler},
		{"UnsubscribeIdempotent", testUnsubscribeIdempotent},
		{"CloseDrainsHandlers", testCloseDrainsHandlers},
		{"CloseBoundedByContext", testCloseBoundedByContext},
		{"AbandonedDeliveryRedelivered", testAbandonedDeliveryRedelivered},
		{"CloseIdempotent", testCloseIdempotent},
		{"PublishAfterClose", testPublishAfterClose},
		{"SubscribeAfterClose", testSubscribeAfterClose},
		{"PublishCanceledContext", testPublishCanceledContext},
		{"SubscribeCanceledContext", testSubscribeCanceledContext},
		// validation.go
		{"BadNames", testBadNames},
		{"InvalidOptions", testInvalidOptions},
		// load.go
		{"ConcurrencyLimit", testConcurrencyLimit},
		{"ConcurrentPublishersAndSubscribers", testConcurrentPublishersAndSubscribers},
		{"TenThousandMessages", testTenThousandMessages},
		{"OrderedPerPublisher", testOrderedPerPublisher},
		// restart.go
		{"Restart", testRestart},
	}
}

// Behaviours returns the names of the suite's subtests, in the order [Run]
// runs them: the names [Features.Skip] and `go test -run` take.
func Behaviours() []string {
	bs := behaviours()
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.name
	}
	return names
}

// Run runs every conformance behaviour as its own subtest of t, one after
// the other, against the backend open connects to.
//
// open is called whenever a subtest needs a client, often several times in
// one subtest: it must return a new, independent client of one backend
// shared by every call made during Run (its own connection, its own
// subscriptions, its own Close), so that a message published through one
// client reaches the subscriptions of every other. The suite closes every
// client it opens, in t.Cleanup; open may register cleanups of its own on
// the t it is given, which is the subtest's. See the package documentation
// for why clients are separate.
func Run(t *testing.T, open func(t *testing.T) broker.Broker, f Features) {
	t.Helper()
	if open == nil {
		t.Fatal("brokertest: Run needs an open function")
	}
	bs := behaviours()
	for name := range f.Skip {
		if !slices.ContainsFunc(bs, func(b behaviour) bool { return b.name == name }) {
			t.Errorf("brokertest: Features.Skip names %q, which is not a behaviour (see brokertest.Behaviours)", name)
		}
	}
	s := &suite{open: open, f: f.withDefaults()}
	for _, b := range bs {
		t.Run(b.name, func(t *testing.T) {
			if why, ok := f.Skip[b.name]; ok {
				t.Skip("skipped by Features.Skip: " + why)
			}
			b.run(&env{T: t, s: s, f: s.f, id: randomToken()})
		})
	}
}

// suite is one Run.
type suite struct {
	open func(t *testing.T) broker.Broker
	f    Features
}

// env is what one subtest works with: its *testing.T, the features, and
// names no other subtest uses.
type env struct {
	*testing.T
	s  *suite
	f  Features
	id string // random, in every topic and queue group name of the subtest
}

// randomToken returns 8 random hex digits.
func randomToken() string {
	var b [4]byte
	r := rand.Uint32()
	b[0], b[1], b[2], b[3] = byte(r>>24), byte(r>>16), byte(r>>8), byte(r)
	return hex.EncodeToString(b[:])
}

// topic returns a topic name unique to this subtest.
func (e *env) topic(name string) string { return "brokertest." + e.id + "." + name }

// queue returns a queue group name unique to this subtest: some engines
// (Kafka consumer groups) name groups globally, not per topic.
func (e *env) queue(name string) string { return name + "-" + e.id }

// ctx returns a context that ends after the suite's Timeout, for one call.
func (e *env) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), e.f.Timeout)
}

// client opens a new client and closes it when the subtest ends.
func (e *env) client() broker.Broker {
	e.Helper()
	b := e.s.open(e.T)
	if b == nil {
		e.Fatal("brokertest: open returned a nil broker")
	}
	e.Cleanup(func() {
		ctx, cancel := e.ctx()
		defer cancel()
		if err := b.Close(ctx); err != nil {
			e.Errorf("Close at the end of the test: %v", err)
		}
	})
	return b
}

// fast are the options every subscription of the suite starts with, so
// that redeliveries come back quickly; a test's own options come after.
func fast() []broker.SubscribeOption {
	return []broker.SubscribeOption{
		broker.RetryBackoff(broker.Backoff{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2}),
	}
}

// subscribe subscribes h through b with the fast options then opts, and
// unsubscribes when the subtest ends (before its client closes).
func (e *env) subscribe(b broker.Broker, topic string, h broker.Handler, opts ...broker.SubscribeOption) broker.Subscription {
	e.Helper()
	ctx, cancel := e.ctx()
	defer cancel()
	sub, err := b.Subscribe(ctx, topic, h, append(fast(), opts...)...)
	if err != nil {
		e.Fatalf("Subscribe(%q): %v", topic, err)
	}
	if sub == nil {
		e.Fatalf("Subscribe(%q) returned a nil Subscription and no error", topic)
	}
	e.Cleanup(func() {
		ctx, cancel := e.ctx()
		defer cancel()
		if err := sub.Unsubscribe(ctx); err != nil && !errors.Is(err, broker.ErrClosed) {
			e.Errorf("Unsubscribe at the end of the test: %v", err)
		}
	})
	return sub
}

// publish publishes m and fails the test on error.
func (e *env) publish(b broker.Broker, topic string, m *broker.Message) {
	e.Helper()
	ctx, cancel := e.ctx()
	defer cancel()
	if err := b.Publish(ctx, topic, m); err != nil {
		e.Fatalf("Publish(%q): %v", topic, err)
	}
}

// publishN publishes n messages whose bodies are prefix and their index,
// and returns their IDs in publish order.
func (e *env) publishN(b broker.Broker, topic string, n int, prefix string) []string {
	e.Helper()
	ids := make([]string, n)
	for i := range n {
		m := &broker.Message{Body: []byte(prefix + itoa(i))}
		e.publish(b, topic, m)
		ids[i] = m.ID
	}
	return ids
}

// settle waits the quiet period of a "nothing more arrives" check.
func (e *env) settle() { <-time.After(e.f.SettleTime) }
