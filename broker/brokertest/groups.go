package brokertest

import (
	"context"
	"fmt"

	"github.com/herald-dev/herald/broker"
)

// testQueueGroupOnePerMessage: in a queue group of three members, each on
// its own client, each message is handled by exactly one member.
func testQueueGroupOnePerMessage(e *env) {
	pub := e.client()
	topic, q := e.topic("group"), e.queue("workers")
	r := newRecorder()
	for i := range 3 {
		e.subscribe(e.client(), topic, r.handler(i, nil), broker.Queue(q))
	}
	ids := e.publishN(pub, topic, 300, "job ")
	e.exactlyOnce(r, ids, "queue group of 3")
	e.Logf("deliveries per member: %v", r.perMember())
}

// testQueueGroupSpread: a queue group spreads its messages over its
// members: while every member's handler is busy, the others still get
// messages, so each of three members handles some of 300 messages.
func testQueueGroupSpread(e *env) {
	pub := e.client()
	topic, q := e.topic("spread"), e.queue("workers")
	r := newRecorder()
	gate := make(chan struct{}) // closed once every member has a message
	for i := range 3 {
		h := r.handler(i, func(ctx context.Context, _ *broker.Message) error {
			select { // hold the first messages until all members are busy
			case <-gate:
			case <-ctx.Done():
			}
			return nil
		})
		e.subscribe(e.client(), topic, h, broker.Queue(q))
	}
	opened := false
	defer func() {
		if !opened {
			close(gate)
		}
	}()
	ids := e.publishN(pub, topic, 300, "job ")
	e.waitFor(e.f.Timeout, func() bool { return len(r.perMember()) == 3 }, func() string {
		return fmt.Sprintf("every member of the group to get a message while the others are busy (deliveries per member: %v)", r.perMember())
	})
	close(gate)
	opened = true
	e.exactlyOnce(r, ids, "queue group of 3")
	per := r.perMember()
	for i := range 3 {
		if per[i] == 0 {
			e.Errorf("member %d handled none of the 300 messages (per member: %v)", i, per)
		}
	}
	e.Logf("deliveries per member: %v", per)
}

// testQueueGroupMemberLeaves: when a member of a queue group unsubscribes,
// the remaining member gets every later message; nothing is lost to the
// member that left, including what it had prefetched.
func testQueueGroupMemberLeaves(e *env) {
	pub := e.client()
	topic, q := e.topic("leave"), e.queue("workers")
	r := newRecorder()
	leaving := e.subscribe(e.client(), topic, r.handler(0, nil), broker.Queue(q), broker.AckWait(e.f.AckWait))
	e.subscribe(e.client(), topic, r.handler(1, nil), broker.Queue(q), broker.AckWait(e.f.AckWait))

	before := e.publishN(pub, topic, 50, "before ")
	e.waitIDs(r, before, "messages before the member leaves")
	ctx, cancel := e.ctx()
	defer cancel()
	if err := leaving.Unsubscribe(ctx); err != nil {
		e.Fatalf("Unsubscribe: %v", err)
	}
	left := r.perMember()[0]
	after := e.publishN(pub, topic, 50, "after ")
	e.exactlyOnce(r, append(before, after...), "queue group after a member left")
	if n := r.perMember()[0]; n != left {
		e.Errorf("the member that left handled %d messages after Unsubscribe returned", n-left)
	}
}

// testBroadcast: every subscriber without a queue group gets every message.
func testBroadcast(e *env) {
	pub := e.client()
	topic := e.topic("broadcast")
	rs := make([]*recorder, 3)
	for i := range rs {
		rs[i] = newRecorder()
		e.subscribe(e.client(), topic, rs[i].handler(i, nil))
	}
	ids := e.publishN(pub, topic, 100, "news ")
	for i, r := range rs {
		e.waitIDs(r, ids, fmt.Sprintf("broadcast subscriber %d", i))
	}
	e.settle()
	for i, r := range rs {
		e.checkExactlyOnce(r, ids, fmt.Sprintf("broadcast subscriber %d", i))
	}
}

// testTwoQueueGroups: two queue groups on one topic each get every message,
// once per group.
func testTwoQueueGroups(e *env) {
	pub := e.client()
	topic := e.topic("twogroups")
	a, b := newRecorder(), newRecorder()
	for i := range 2 {
		e.subscribe(e.client(), topic, a.handler(i, nil), broker.Queue(e.queue("a")))
		e.subscribe(e.client(), topic, b.handler(i, nil), broker.Queue(e.queue("b")))
	}
	ids := e.publishN(pub, topic, 100, "event ")
	e.waitIDs(a, ids, "group a")
	e.waitIDs(b, ids, "group b")
	e.settle()
	e.checkExactlyOnce(a, ids, "group a")
	e.checkExactlyOnce(b, ids, "group b")
}

// testBroadcastAndQueueGroup: a broadcast subscriber and a queue group on
// one topic: the subscriber gets every message, the group each message once.
func testBroadcastAndQueueGroup(e *env) {
	pub := e.client()
	topic := e.topic("mixed")
	all, group := newRecorder(), newRecorder()
	e.subscribe(e.client(), topic, all.handler(0, nil))
	for i := range 2 {
		e.subscribe(e.client(), topic, group.handler(i, nil), broker.Queue(e.queue("workers")))
	}
	ids := e.publishN(pub, topic, 100, "event ")
	e.waitIDs(all, ids, "broadcast subscriber")
	e.waitIDs(group, ids, "queue group")
	e.settle()
	e.checkExactlyOnce(all, ids, "broadcast subscriber")
	e.checkExactlyOnce(group, ids, "queue group")
}

// testDurableQueueGroup (Persistent): messages published while a queue
// group has no member (its only member unsubscribed) are delivered when a
// member joins.
func testDurableQueueGroup(e *env) {
	e.durableGroup(func(sub broker.Subscription, _ broker.Broker) error {
		ctx, cancel := e.ctx()
		defer cancel()
		return sub.Unsubscribe(ctx)
	})
}

// testDurableQueueGroupAfterClose (Persistent): as DurableQueueGroup, but
// the member's client closes, as when a consumer process exits.
func testDurableQueueGroupAfterClose(e *env) {
	e.durableGroup(func(_ broker.Subscription, c broker.Broker) error {
		ctx, cancel := e.ctx()
		defer cancel()
		return c.Close(ctx)
	})
}

func (e *env) durableGroup(leave func(broker.Subscription, broker.Broker) error) {
	e.Helper()
	if !e.f.Persistent {
		e.Skip("Features.Persistent is false: queue groups do not keep messages while no member is live")
	}
	pub := e.client()
	topic, q := e.topic("durable"), e.queue("workers")
	r := newRecorder()
	first := e.client()
	sub := e.subscribe(first, topic, r.handler(0, nil), broker.Queue(q))
	live := e.publishN(pub, topic, 10, "live ")
	e.waitIDs(r, live, "messages while the first member is live")
	if err := leave(sub, first); err != nil {
		e.Fatalf("leaving the group: %v", err)
	}
	offline := e.publishN(pub, topic, 50, "offline ")
	e.subscribe(e.client(), topic, r.handler(1, nil), broker.Queue(q))
	e.exactlyOnce(r, append(live, offline...), "durable queue group")
	if n := r.perMember()[0]; n != len(live) {
		e.Errorf("the member that left handled %d messages, want %d", n, len(live))
	}
}

// testUnsubscribeStopsDelivery: once Unsubscribe returns, the subscription's
// handler is not called again, while another subscriber still gets the
// topic's messages.
func testUnsubscribeStopsDelivery(e *env) {
	pub := e.client()
	topic := e.topic("unsub")
	gone, control := newRecorder(), newRecorder()
	sub := e.subscribe(e.client(), topic, gone.handler(0, nil))
	e.subscribe(e.client(), topic, control.handler(1, nil))

	before := e.publishN(pub, topic, 10, "before ")
	e.waitIDs(gone, before, "messages before Unsubscribe")
	ctx, cancel := e.ctx()
	defer cancel()
	if err := sub.Unsubscribe(ctx); err != nil {
		e.Fatalf("Unsubscribe: %v", err)
	}
	n := gone.len()
	after := e.publishN(pub, topic, 10, "after ")
	e.waitIDs(control, after, "messages after Unsubscribe, to the other subscriber")
	e.settle()
	if extra := gone.len() - n; extra > 0 {
		e.Errorf("the handler was called %d times after Unsubscribe returned", extra)
	}
}

// testSubscriptionAccessors: a Subscription reports its topic and queue
// group.
func testSubscriptionAccessors(e *env) {
	c := e.client()
	topic, q := e.topic("accessors"), e.queue("workers")
	nop := func(context.Context, *broker.Message) error { return nil }
	group := e.subscribe(c, topic, nop, broker.Queue(q))
	bcast := e.subscribe(c, topic, nop)
	got := []string{group.Topic(), group.Queue(), bcast.Topic(), bcast.Queue()}
	want := []string{topic, q, topic, ""}
	for i := range got {
		if got[i] != want[i] {
			e.Errorf("Topic/Queue of (group, broadcast) = %q, want %q", got, want)
			break
		}
	}
}
