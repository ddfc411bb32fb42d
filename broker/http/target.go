package httpbroker

import (
	"container/heap"
	"sync"
	"sync/atomic"
	"time"
)

// entry is one spooled message waiting for one target, as the sender keeps
// it in memory: the message itself stays on disk until it is sent.
type entry struct {
	seq      uint64
	attempts uint32 // deliveries made so far
	due      int64  // Unix ns before which it must not be sent; 0 = now
	size     int    // bytes of the stored message
	index    int    // in its heap
}

// seqHeap orders ready entries by sequence: a target's messages go out in
// publish order, redeliveries back in their place.
type seqHeap []*entry

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i].seq < h[j].seq }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *seqHeap) Push(x any)        { e := x.(*entry); e.index = len(*h); *h = append(*h, e) }
func (h *seqHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// dueHeap orders delayed entries by due time.
type dueHeap []*entry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *dueHeap) Push(x any)        { e := x.(*entry); e.index = len(*h); *h = append(*h, e) }
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// target is the in-memory queue of one target (a queue group, a broadcast
// subscription or held dead letters) and the lanes that deliver it.
type target struct {
	key         string
	kind        byte
	topic, name string

	mu       sync.Mutex
	ready    seqHeap
	delayed  dueHeap
	inflight int
	dropped  bool
	wake     chan struct{}    // closed and replaced whenever there may be work
	lanes    map[string]*lane // by instance ID; guarded by engine.mu
	nLanes   atomic.Int32     // len(lanes), for the lanes to share a burst
}

func newTarget(key string) *target {
	kind, topic, name, _ := parseTargetKey(key)
	return &target{key: key, kind: kind, topic: topic, name: name, wake: make(chan struct{}), lanes: map[string]*lane{}}
}

// signalLocked wakes the lanes waiting for work.
func (t *target) signalLocked() {
	close(t.wake)
	t.wake = make(chan struct{})
}

// addLocked queues e, ready or delayed by its due time.
func (t *target) addLocked(e *entry, now int64) {
	if e.due > now {
		heap.Push(&t.delayed, e)
	} else {
		e.due = 0
		heap.Push(&t.ready, e)
	}
}

func (t *target) add(es []*entry) {
	now := time.Now().UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dropped {
		return
	}
	for _, e := range es {
		t.addLocked(e, now)
	}
	t.signalLocked()
}

// requeue puts entries taken by a lane back, and wakes the lanes.
func (t *target) requeue(es []*entry) {
	if len(es) == 0 {
		return
	}
	now := time.Now().UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inflight -= len(es)
	if t.dropped {
		return
	}
	for _, e := range es {
		t.addLocked(e, now)
	}
	t.signalLocked()
}

// done forgets n entries taken by a lane (acknowledged or gone).
func (t *target) done(n int) {
	if n == 0 {
		return
	}
	t.mu.Lock()
	t.inflight -= n
	t.signalLocked()
	t.mu.Unlock()
}

// promoteLocked moves the delayed entries that are due to the ready heap
// and returns when the next delayed one is due (0 if none).
func (t *target) promoteLocked(now int64) int64 {
	for len(t.delayed) > 0 && t.delayed[0].due <= now {
		e := heap.Pop(&t.delayed).(*entry)
		e.due = 0
		heap.Push(&t.ready, e)
	}
	if len(t.delayed) > 0 {
		return t.delayed[0].due
	}
	return 0
}

// takeLocked removes up to maxN ready entries (about maxBytes in all; the
// first is taken whatever its size) in sequence order.
func (t *target) takeLocked(maxN, maxBytes int) []*entry {
	n := min(maxN, len(t.ready))
	out := make([]*entry, 0, n)
	size := 0
	for len(out) < n {
		e := t.ready[0]
		if len(out) > 0 && size+e.size > maxBytes {
			break
		}
		heap.Pop(&t.ready)
		size += e.size
		out = append(out, e)
	}
	t.inflight += len(out)
	return out
}

// pending returns how many entries wait or are in flight.
func (t *target) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.ready) + len(t.delayed) + t.inflight
}

// drop empties the target; its lanes end after their current request.
func (t *target) drop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropped = true
	t.ready, t.delayed = nil, nil
	t.signalLocked()
}
