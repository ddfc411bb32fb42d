package mem

import (
	"sync"
	"time"

	"github.com/herald-dev/herald/broker"
)

// group is the unit of delivery: the queue of one queue group, or of one
// broadcast subscriber. Every message published to its topic is pushed onto
// it once; its members' workers pop from it, so each message is handled by
// one member.
//
// A queue group lives as long as its bus and keeps its queue while it has no
// member. A broadcast group dies with its only subscriber.
type group struct {
	topic string
	queue string // the queue group's name, or "" for a broadcast subscriber

	mu      sync.Mutex
	cond    sync.Cond // signalled when ready gains an entry or a member stops
	ready   queue
	waiting int  // workers blocked in cond.Wait
	dead    bool // a broadcast group whose subscriber left: drop everything
}

func newGroup(topic, queue string) *group {
	g := &group{topic: topic, queue: queue}
	g.cond.L = &g.mu
	return g
}

// push queues the first delivery of m.
func (g *group) push(m *broker.Message) {
	g.mu.Lock()
	if g.dead {
		g.mu.Unlock()
		return
	}
	g.ready.push(entry{m: m, attempt: 1})
	wake := g.waiting > 0
	g.mu.Unlock()
	if wake {
		g.cond.Signal()
	}
}

// pushAll queues the first delivery of each of ms, in order.
func (g *group) pushAll(ms []*broker.Message) {
	g.mu.Lock()
	if g.dead {
		g.mu.Unlock()
		return
	}
	for _, m := range ms {
		g.ready.push(entry{m: m, attempt: 1})
	}
	waiting := g.waiting
	g.mu.Unlock()
	switch {
	case waiting == 0:
	case waiting <= len(ms):
		g.cond.Broadcast()
	default:
		for range ms {
			g.cond.Signal()
		}
	}
}

// retryLocked queues e for redelivery after delay: at the front at once when
// delay is zero, else through a timer. g.mu must be held.
func (g *group) retryLocked(e entry, delay time.Duration) {
	if g.dead {
		return
	}
	if delay <= 0 {
		g.ready.pushFront(e)
		if g.waiting > 0 {
			g.cond.Signal()
		}
		return
	}
	time.AfterFunc(delay, func() { g.requeue(e) })
}

// requeue queues e at the back; it is how a delayed redelivery comes back.
func (g *group) requeue(e entry) {
	g.mu.Lock()
	if !g.dead {
		g.ready.push(e)
		if g.waiting > 0 {
			g.cond.Signal()
		}
	}
	g.mu.Unlock()
}

// kill drops a broadcast group's queue; later pushes are ignored.
func (g *group) kill() {
	g.mu.Lock()
	g.dead = true
	g.ready = queue{}
	g.mu.Unlock()
}
