package mem

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/herald-dev/herald/broker"
)

var _ broker.DeadLetterBrowser = (*Broker)(nil)

// MaxDeadLetters bounds the dead letters the bus keeps per dead-letter topic
// for [Broker.DeadLetters]; past it, the oldest is forgotten (it was still
// delivered to the topic's subscribers, if any).
const MaxDeadLetters = 10000

// deadStore keeps the dead letters published on a bus, by topic, so that
// they can be browsed and deleted. A message is a dead letter when it
// carries [broker.HeaderDeadLetterTopic] (see [broker.NewDeadLetter]).
type deadStore struct {
	mu     sync.Mutex
	topics map[string][]*broker.Message
}

// keep records m, a message the bus owns and nobody modifies, when it is a
// dead letter.
func (d *deadStore) keep(topic string, m *broker.Message) {
	if m.Header.Get(broker.HeaderDeadLetterTopic) == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.topics == nil {
		d.topics = map[string][]*broker.Message{}
	}
	l := d.topics[topic]
	if len(l) >= MaxDeadLetters {
		l = slices.Delete(l, 0, len(l)-MaxDeadLetters+1)
	}
	d.topics[topic] = append(l, m)
}

// DeadLetters returns up to limit (all when limit <= 0) of the dead letters
// published to topic on this broker's bus, oldest first, as copies. The bus
// keeps the last [MaxDeadLetters] of each topic, whether or not the topic
// had subscribers. It implements [broker.DeadLetterBrowser].
func (b *Broker) DeadLetters(ctx context.Context, topic string, limit int) ([]*broker.Message, error) {
	if err := broker.ValidateTopic(topic); err != nil {
		return nil, fmt.Errorf("mem: dead letters %q: %w", topic, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mem: dead letters %q: %w", topic, err)
	}
	d := &b.bus.dead
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.topics[topic]
	if limit > 0 && len(l) > limit {
		l = l[:limit]
	}
	out := make([]*broker.Message, len(l))
	for i, m := range l {
		c := m.Clone()
		c.Attempt = 0
		out[i] = c
	}
	return out, nil
}

// DeleteDeadLetters forgets the dead letters of topic whose ID is in ids and
// returns how many it removed. It implements [broker.DeadLetterBrowser].
func (b *Broker) DeleteDeadLetters(ctx context.Context, topic string, ids []string) (int, error) {
	if err := broker.ValidateTopic(topic); err != nil {
		return 0, fmt.Errorf("mem: delete dead letters %q: %w", topic, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("mem: delete dead letters %q: %w", topic, err)
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	d := &b.bus.dead
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.topics[topic]
	n := len(l)
	l = slices.DeleteFunc(l, func(m *broker.Message) bool { return want[m.ID] })
	n -= len(l)
	if len(l) == 0 {
		delete(d.topics, topic)
	} else {
		d.topics[topic] = l
	}
	return n, nil
}
