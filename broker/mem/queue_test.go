package mem

import (
	"math/rand/v2"
	"testing"

	"github.com/herald-dev/herald/broker"
)

// TestQueueModel drives a queue and a plain slice with the same random
// operations, through growth, wrap-around and shrinking, and compares them.
func TestQueueModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	var q queue
	var model []int
	msgs := make([]*broker.Message, 5000)
	for i := range msgs {
		msgs[i] = &broker.Message{}
	}
	maxLen := 0
	for step := range 200_000 {
		// Phases: mostly grow, then mostly drain, so the buffer grows and shrinks.
		grow := (step/20_000)%2 == 0
		switch op := rng.IntN(10); {
		case q.len() > 0 && ((grow && op < 3) || (!grow && op < 7)):
			e := q.pop()
			if e.attempt != model[0] || e.m != msgs[model[0]%len(msgs)] {
				t.Fatalf("step %d: popped attempt %d, want %d", step, e.attempt, model[0])
			}
			model = model[1:]
		case op == 9:
			v := step
			q.pushFront(entry{m: msgs[v%len(msgs)], attempt: v})
			model = append([]int{v}, model...)
		default:
			v := step
			q.push(entry{m: msgs[v%len(msgs)], attempt: v})
			model = append(model, v)
		}
		if q.len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", step, q.len(), len(model))
		}
		if len(q.buf)&(len(q.buf)-1) != 0 {
			t.Fatalf("step %d: buffer size %d is not a power of two", step, len(q.buf))
		}
		maxLen = max(maxLen, len(q.buf))
	}
	for q.len() > 0 {
		q.pop()
	}
	if len(q.buf) > minQueue {
		t.Errorf("an empty queue keeps a buffer of %d entries (grew to %d)", len(q.buf), maxLen)
	}
	t.Logf("buffer grew to %d entries and shrank back to %d", maxLen, len(q.buf))
}

// TestQueueReleasesMessages: a popped slot no longer references its message.
func TestQueueReleasesMessages(t *testing.T) {
	var q queue
	q.push(entry{m: &broker.Message{ID: "x"}, attempt: 1})
	q.pop()
	for i, e := range q.buf {
		if e.m != nil {
			t.Fatalf("slot %d still holds a message after pop", i)
		}
	}
}
