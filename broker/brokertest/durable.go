package brokertest

import (
	"errors"
	"fmt"
	"time"

	"github.com/herald-dev/herald/broker"
)

// These behaviours pin down what a queue group owes its messages around the
// moments it has no member: a member leaving and another joining, a group
// left by the very client that publishes, a publisher that never saw the
// group, and a group declared before anyone joined it. Each was a loss found
// in a backend by a suite written elsewhere (Watermill's universal tests),
// and is checked here for every backend.

// rejoinRounds is how many leave-and-join rounds QueueGroupRejoin runs: a
// departed member's leftovers (a pull request still open at the server, a
// prefetch, a lease) take the next message in some rounds only.
const rejoinRounds = 10

// testQueueGroupRejoin: a member handles one message and leaves while its
// client stays open (a subscription recycled by a live process), and a new
// member joins on a client of its own: the next message reaches the new
// member promptly, not after an AckWait spent with something the departed
// member left behind. With Persistent, the next message is published while
// the group has no member; without, once the new member has joined.
func testQueueGroupRejoin(e *env) {
	pub := e.client()
	topic, q := e.topic("rejoin"), e.queue("workers")
	// Far longer than Timeout: a message held until an AckWait ends fails
	// the wait below instead of arriving late.
	long := broker.AckWait(max(3*e.f.Timeout, time.Minute))
	next := func(i int) string {
		m := &broker.Message{ID: fmt.Sprintf("rejoin-%s-%d", e.id, i), Body: []byte("round " + itoa(i))}
		e.publish(pub, topic, m)
		return m.ID
	}
	var want string
	for i := range rejoinRounds {
		r := newRecorder()
		sub := e.subscribe(e.client(), topic, r.handler(i, nil), broker.Queue(q), long)
		if want == "" {
			want = next(i)
		}
		start := time.Now()
		e.waitIDs(r, []string{want}, fmt.Sprintf("round %d: the message published after the previous member left, to the new member", i))
		if d := time.Since(start); d > e.f.Timeout/2 {
			e.Errorf("round %d: the message took %v to reach the new member", i, d)
		}
		ctx, cancel := e.ctx()
		err := sub.Unsubscribe(ctx)
		cancel()
		if err != nil {
			e.Fatalf("round %d: Unsubscribe: %v", i, err)
		}
		e.checkExactlyOnce(r, []string{want}, fmt.Sprintf("round %d", i))
		want = ""
		if e.f.Persistent {
			want = next(i + 1)
		}
	}
}

// testDurableGroupLeftByPublisher (Persistent): a client joins a queue
// group and leaves it at once, and the same client then publishes: the
// group, durable from its first Subscribe, keeps those messages for its next
// member, even though the client learnt of the group only from itself.
func testDurableGroupLeftByPublisher(e *env) {
	if !e.f.Persistent {
		e.Skip("Features.Persistent is false: queue groups do not keep messages while no member is live")
	}
	c := e.client()
	topic, q := e.topic("leftbypub"), e.queue("workers")
	r := newRecorder()
	var ids []string
	for round := range 3 {
		sub := e.subscribe(c, topic, r.handler(0, nil), broker.Queue(q))
		ctx, cancel := e.ctx()
		err := sub.Unsubscribe(ctx)
		cancel()
		if err != nil {
			e.Fatalf("round %d: Unsubscribe: %v", round, err)
		}
		ids = append(ids, e.publishN(c, topic, 10, fmt.Sprintf("round %d: ", round))...)
	}
	e.subscribe(e.client(), topic, r.handler(1, nil), broker.Queue(q))
	e.exactlyOnce(r, ids, "messages published by the client that joined and left the group")
}

// testDurableGroupNewPublisher (Persistent): a queue group's only member
// leaves and its client closes (the consumer process exits); then a
// publisher that never saw the group, opened afterwards, publishes at once.
// The group keeps those messages for the member that joins next.
func testDurableGroupNewPublisher(e *env) {
	if !e.f.Persistent {
		e.Skip("Features.Persistent is false: queue groups do not keep messages while no member is live")
	}
	topic, q := e.topic("newpub"), e.queue("workers")
	r := newRecorder()
	first := e.client()
	e.subscribe(first, topic, r.handler(0, nil), broker.Queue(q))
	live := e.publishN(first, topic, 5, "live ")
	e.waitIDs(r, live, "messages while the first member is live")
	ctx, cancel := e.ctx()
	err := first.Close(ctx)
	cancel()
	if err != nil {
		e.Fatalf("closing the first member's client: %v", err)
	}
	pub := e.client()
	offline := e.publishN(pub, topic, 20, "offline ")
	e.subscribe(e.client(), topic, r.handler(1, nil), broker.Queue(q))
	e.exactlyOnce(r, append(live, offline...), "messages from a publisher that never saw the group")
}

// testDeclaredGroup (Persistent): a queue group declared with
// [broker.DeclareGroup] keeps the messages published after the declaration
// by any client, for its first member; declaring it again, or declaring a
// group that has members, changes nothing; bad names are refused with
// [broker.ErrBadTopic]; declaring through a closed client fails with
// [broker.ErrClosed].
func testDeclaredGroup(e *env) {
	if !e.f.Persistent {
		e.Skip("Features.Persistent is false: queue groups do not keep messages while no member is live")
	}
	topic, q := e.topic("declared"), e.queue("workers")
	d := e.client()
	if _, ok := d.(broker.GroupDeclarer); !ok {
		e.Fatalf("%T does not implement broker.GroupDeclarer: implement DeclareGroup, or declare the gap in Features.Skip", d)
	}
	declare := func(b broker.Broker, topic, group string) error {
		ctx, cancel := e.ctx()
		defer cancel()
		return broker.DeclareGroup(ctx, b, topic, group)
	}
	for range 2 { // the second declaration finds the group
		if err := declare(d, topic, q); err != nil {
			e.Fatalf("DeclareGroup(%q, %q): %v", topic, q, err)
		}
	}
	for _, bad := range [][2]string{{"bad topic", q}, {topic, "bad.group"}, {topic, ""}, {"", q}} {
		if err := declare(d, bad[0], bad[1]); !errors.Is(err, broker.ErrBadTopic) {
			e.Errorf("DeclareGroup(%q, %q): %v, want an error wrapping ErrBadTopic", bad[0], bad[1], err)
		}
	}

	pub := e.client() // opened after the declaration; never saw a member
	early := e.publishN(pub, topic, 20, "early ")
	r := newRecorder()
	e.subscribe(e.client(), topic, r.handler(0, nil), broker.Queue(q))
	e.exactlyOnce(r, early, "messages published to a declared group before its first member joined")

	if err := declare(e.client(), topic, q); err != nil {
		e.Fatalf("DeclareGroup of a group with a live member: %v", err)
	}
	later := e.publishN(pub, topic, 10, "later ")
	e.exactlyOnce(r, append(early, later...), "a declared group with a live member, declared again")

	closed := e.client()
	ctx, cancel := e.ctx()
	err := closed.Close(ctx)
	cancel()
	if err != nil {
		e.Fatalf("Close: %v", err)
	}
	if err := declare(closed, e.topic("afterclose"), q); !errors.Is(err, broker.ErrClosed) {
		e.Errorf("DeclareGroup after Close: %v, want an error wrapping ErrClosed", err)
	}
}
