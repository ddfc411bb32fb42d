package mem

import (
	"slices"
	"sync"

	"github.com/herald-dev/herald/broker"
)

// bus is the in-process "server" that every [Broker] made by [New] and its
// [Broker.Connect] calls share: the topics, their queue groups and their
// broadcast subscribers.
type bus struct {
	mu     sync.RWMutex
	topics map[string]*topicState
	dead   deadStore // dead letters, for browsing
}

// topicState is what a topic has subscribed to it.
type topicState struct {
	groups map[string]*group // queue groups by name; never removed
	// fanout lists every group a message published to the topic goes to:
	// the queue groups and one group per broadcast subscriber. It is
	// replaced, never modified, so Publish can use it after the lock is
	// released.
	fanout []*group
}

func newBus() *bus { return &bus{topics: map[string]*topicState{}} }

// publish hands m, which the bus now owns and nobody modifies any more, to
// every group of topic.
func (b *bus) publish(topic string, m *broker.Message) {
	b.dead.keep(topic, m)
	b.mu.RLock()
	var fanout []*group
	if t := b.topics[topic]; t != nil {
		fanout = t.fanout
	}
	b.mu.RUnlock()
	for _, g := range fanout {
		g.push(m)
	}
}

// publishAll is publish for a batch: each group is locked once.
func (b *bus) publishAll(topic string, ms []*broker.Message) {
	for _, m := range ms {
		b.dead.keep(topic, m)
	}
	b.mu.RLock()
	var fanout []*group
	if t := b.topics[topic]; t != nil {
		fanout = t.fanout
	}
	b.mu.RUnlock()
	for _, g := range fanout {
		g.pushAll(ms)
	}
}

// join returns the group a new subscription to topic reads from: the queue
// group queue, made on first use, or a new broadcast group when queue is "".
func (b *bus) join(topic, queue string) *group {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[topic]
	if t == nil {
		t = &topicState{groups: map[string]*group{}}
		b.topics[topic] = t
	}
	if queue != "" {
		if g := t.groups[queue]; g != nil {
			return g
		}
	}
	g := newGroup(topic, queue)
	if queue != "" {
		t.groups[queue] = g
	}
	t.fanout = append(slices.Clip(t.fanout), g)
	return g
}

// leave removes the broadcast group g from its topic, and the topic when
// nothing is left on it.
func (b *bus) leave(g *group) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[g.topic]
	if t == nil {
		return
	}
	t.fanout = slices.DeleteFunc(slices.Clone(t.fanout), func(x *group) bool { return x == g })
	if len(t.fanout) == 0 && len(t.groups) == 0 {
		delete(b.topics, g.topic)
	}
}
