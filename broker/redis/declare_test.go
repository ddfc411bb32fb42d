package redis_test

import (
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/redis"
	goredis "github.com/redis/go-redis/v9"
)

// groupInfo returns the consumer group group of stream, failing the test
// when it is missing.
func groupInfo(t *testing.T, c *goredis.Client, stream, group string) goredis.XInfoGroup {
	t.Helper()
	gs, err := c.XInfoGroups(ctx(t), stream).Result()
	if err != nil {
		t.Fatalf("XINFO GROUPS %s: %v", stream, err)
	}
	for _, g := range gs {
		if g.Name == group {
			return g
		}
	}
	t.Fatalf("no consumer group %q on %s (groups: %+v)", group, stream, gs)
	return goredis.XInfoGroup{}
}

// A declared group is the group its first Subscribe would have made: on the
// topic's stream and on its redo stream, at the stream's start, so it gets
// the entries published before the declaration just as a group created by
// Subscribe at that moment would, and those published after.
func TestDeclareGroupLikeSubscribe(t *testing.T) {
	p := prefix()
	b := open(t, redis.WithPrefix(p))
	c := client(t, b)
	const topic = "declare.like"
	var ids []string
	add := func(body string) {
		m := &broker.Message{Body: []byte(body)}
		publish(t, b, topic, m)
		ids = append(ids, m.ID)
	}
	add("before")
	if err := b.DeclareGroup(ctx(t), topic, "declared"); err != nil {
		t.Fatalf("DeclareGroup: %v", err)
	}
	stream := p + ":{" + topic + "}"
	if g := groupInfo(t, c, stream, "declared"); g.LastDeliveredID != "0-0" || g.Pending != 0 || g.Consumers != 0 {
		t.Errorf("declared group %+v, want one at the stream's start with no consumer", g)
	}
	groupInfo(t, c, stream+":declared:redo", "declared")
	add("after")

	declared, subscribed := newCollector(), newCollector()
	subscribe(t, b, topic, declared.handler(nil), broker.Queue("declared"))
	subscribe(t, b, topic, subscribed.handler(nil), broker.Queue("subscribed"))
	for name, col := range map[string]*collector{"declared": declared, "subscribed": subscribed} {
		got := col.wait(t, 2, 10*time.Second)
		for i, m := range got {
			if m.ID != ids[i] {
				t.Errorf("group %s: delivery %d is %q, want %q", name, i, m.Body, ids[i])
			}
		}
	}
}

// Declaring a group that has read part of its stream leaves it where it
// is: its members get the rest, not what the group already handled.
func TestDeclareGroupKeepsPosition(t *testing.T) {
	p := prefix()
	b := open(t, redis.WithPrefix(p))
	c := client(t, b)
	const topic = "declare.keep"
	stream := p + ":{" + topic + "}"
	first := newCollector()
	sub := subscribe(t, b, topic, first.handler(nil), broker.Queue("g"))
	for range 3 {
		publish(t, b, topic, &broker.Message{Body: []byte("handled")})
	}
	first.wait(t, 3, 10*time.Second)
	if err := sub.Unsubscribe(ctx(t)); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	before := groupInfo(t, c, stream, "g")
	if err := b.DeclareGroup(ctx(t), topic, "g"); err != nil {
		t.Fatalf("DeclareGroup of an existing group: %v", err)
	}
	if after := groupInfo(t, c, stream, "g"); after.LastDeliveredID != before.LastDeliveredID || after.Pending != before.Pending {
		t.Errorf("DeclareGroup moved the group: %+v, was %+v", after, before)
	}
	m := &broker.Message{Body: []byte("next")}
	publish(t, b, topic, m)
	next := newCollector()
	subscribe(t, b, topic, next.handler(nil), broker.Queue("g"))
	if got := next.wait(t, 1, 10*time.Second); got[0].ID != m.ID {
		t.Errorf("the next member got %q first, want the message published after the declaration", got[0].Body)
	}
}
