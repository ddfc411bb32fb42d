package brokertest

import (
	"context"
	"sync"
	"time"

	"github.com/herald-dev/herald/broker"
)

// testRestart (Restart): the backend's server restarts while a publisher
// publishes and a queue-group member consumes, on clients opened before.
// Publish may fail during the outage; the test retries each message until
// Publish returns nil. Every message Publish acknowledged is delivered after
// the restart. Duplicates are allowed after a crash, and logged.
func testRestart(e *env) {
	if e.f.Restart == nil {
		e.Skip("Features.Restart is nil: the backend has no server the suite can restart")
	}
	pub, sub := e.client(), e.client()
	topic := e.topic("restart")
	r := newRecorder()
	e.subscribe(sub, topic, r.handler(0, nil), broker.Queue(e.queue("workers")), broker.AckWait(e.f.AckWait))

	var (
		mu       sync.Mutex
		acked    []string
		failures int
		stop     = make(chan struct{})
		done     = make(chan struct{})
		stopOnce sync.Once
	)
	halt := func() { stopOnce.Do(func() { close(stop) }); <-done }
	defer halt()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			m := &broker.Message{Body: []byte("restart " + itoa(i))}
			for { // the same message (same ID once set) until accepted
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
				err := pub.Publish(ctx, topic, m)
				cancel()
				if err == nil {
					mu.Lock()
					acked = append(acked, m.ID)
					mu.Unlock()
					break
				}
				mu.Lock()
				failures++
				mu.Unlock()
				select { // pace the retries during the outage
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
	}()

	const perPhase = 200
	e.waitCount(count, perPhase, "messages acknowledged before the restart")
	before := count()
	start := time.Now()
	e.f.Restart(e.T)
	e.Logf("server restarted in %v", time.Since(start).Round(time.Millisecond))
	e.waitCount(count, before+perPhase, "messages acknowledged after the restart")
	halt()

	mu.Lock()
	ids := append([]string(nil), acked...)
	fails := failures
	mu.Unlock()
	e.waitIDs(r, ids, "acknowledged messages after a restart")
	e.settle()
	lost, example := r.missing(ids)
	if lost > 0 {
		e.Errorf("%d of %d acknowledged messages lost across the restart (e.g. %s)", lost, len(ids), example)
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var dups, unacked int
	r.mu.Lock()
	for id, c := range r.count {
		if !want[id] {
			unacked++ // its Publish failed, but the server had it: allowed
		}
		dups += c - 1
	}
	r.mu.Unlock()
	e.Logf("restart: %d messages acknowledged (%d before the restart), %d failed Publish calls retried, %d deliveries: %d duplicates (allowed after a crash), %d delivered whose Publish had failed",
		len(ids), before, fails, r.len(), dups, unacked)
}
