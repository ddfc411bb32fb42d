package brokertest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/herald-dev/herald/broker"
)

// delivery is what a handler saw of one delivery. The message is a copy:
// a handler must not keep the one it is given.
type delivery struct {
	msg    *broker.Message
	member int       // which subscription got it (the index given to handler)
	start  time.Time // when the handler was called
	end    time.Time // when it returned (zero while it runs)
	ctxErr error     // the handler context's error when it returned
}

// recorder records the deliveries of one or more subscriptions. Handlers
// never touch the *testing.T (they may run after the test ends); the test
// goroutine reads the record and decides.
type recorder struct {
	mu    sync.Mutex
	ds    []delivery
	count map[string]int // deliveries by message ID
}

func newRecorder() *recorder { return &recorder{count: map[string]int{}} }

// handler returns a handler for member that records each delivery and then
// runs fn; a nil fn acknowledges.
func (r *recorder) handler(member int, fn broker.Handler) broker.Handler {
	return func(ctx context.Context, m *broker.Message) (err error) {
		r.mu.Lock()
		i := len(r.ds)
		r.ds = append(r.ds, delivery{msg: m.Clone(), member: member, start: time.Now()})
		r.count[m.ID]++
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			r.ds[i].end = time.Now()
			r.ds[i].ctxErr = ctx.Err()
			r.mu.Unlock()
		}()
		if fn != nil {
			return fn(ctx, m)
		}
		return nil
	}
}

// len returns the number of deliveries so far.
func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ds)
}

// distinct returns the number of distinct message IDs delivered so far.
func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.count)
}

// deliveries returns a copy of the record.
func (r *recorder) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.ds...)
}

// of returns the deliveries of the message id, in order.
func (r *recorder) of(id string) []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []delivery
	for _, d := range r.ds {
		if d.msg.ID == id {
			out = append(out, d)
		}
	}
	return out
}

// perMember counts deliveries by member.
func (r *recorder) perMember() map[int]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := map[int]int{}
	for _, d := range r.ds {
		n[d.member]++
	}
	return n
}

// missing returns how many of ids were not delivered yet, and one of them.
func (r *recorder) missing(ids []string) (n int, example string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if r.count[id] == 0 {
			if n == 0 {
				example = id
			}
			n++
		}
	}
	return n, example
}

// waitN waits until there are at least n deliveries and returns them.
func (e *env) waitN(r *recorder, n int, what string) []delivery {
	e.Helper()
	e.waitCount(r.len, n, what)
	return r.deliveries()
}

// waitIDs waits until every one of ids was delivered to r.
func (e *env) waitIDs(r *recorder, ids []string, what string) {
	e.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	got := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		n := 0
		for id := range want {
			if r.count[id] > 0 {
				n++
			}
		}
		return n
	}
	e.waitCount(got, len(want), what+": distinct messages delivered")
}

// exactlyOnce waits until every one of ids was delivered to r, lets the
// settle time pass, and then checks that each was delivered exactly once and
// that nothing else was delivered.
func (e *env) exactlyOnce(r *recorder, ids []string, what string) {
	e.Helper()
	e.waitIDs(r, ids, what)
	e.settle()
	e.checkExactlyOnce(r, ids, what)
}

// checkExactlyOnce checks that each of ids was delivered to r exactly once
// and that nothing else was.
func (e *env) checkExactlyOnce(r *recorder, ids []string, what string) {
	e.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var dups, lost, extra int
	var example string
	for id := range want {
		switch c := r.count[id]; {
		case c == 0:
			lost++
			example = fmt.Sprintf("%s lost", id)
		case c > 1:
			dups += c - 1
			example = fmt.Sprintf("%s delivered %d times", id, c)
		}
	}
	for id := range r.count {
		if !want[id] {
			extra++
			example = fmt.Sprintf("%s was never published here", id)
		}
	}
	if dups+lost+extra > 0 {
		e.Errorf("%s: %d messages: %d lost, %d duplicate deliveries, %d unexpected messages (e.g. %s)",
			what, len(want), lost, dups, extra, example)
	}
}
