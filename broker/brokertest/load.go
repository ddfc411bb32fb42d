package brokertest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald/broker"
)

// testConcurrencyLimit: a Concurrency(4) subscription runs up to 4
// handlers at once, and never more.
func testConcurrencyLimit(e *env) {
	pub, c := e.client(), e.client()
	topic := e.topic("concurrency")
	const limit = 4
	var inflight, peak atomic.Int32
	gate := make(chan struct{})
	var gateOnce sync.Once
	open := func() { gateOnce.Do(func() { close(gate) }) }
	defer open()
	r := newRecorder()
	e.subscribe(c, topic, r.handler(0, func(ctx context.Context, _ *broker.Message) error {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return nil
	}), broker.Queue(e.queue("workers")), broker.Concurrency(limit))

	ids := e.publishN(pub, topic, 10*limit, "job ")
	e.waitFor(e.f.Timeout, func() bool { return peak.Load() >= limit }, func() string {
		return fmt.Sprintf("%d handlers to run at once (peak %d)", limit, peak.Load())
	})
	e.settle() // time for a handler beyond the limit to start
	open()
	e.exactlyOnce(r, ids, "messages under a concurrency limit")
	if p := peak.Load(); p != limit {
		e.Errorf("peak of %d handlers at once, want %d", p, limit)
	}
}

// published collects the IDs publishers acknowledged, from many goroutines.
type published struct {
	mu   sync.Mutex
	ids  []string
	errs []error
}

func (p *published) add(id string) {
	p.mu.Lock()
	p.ids = append(p.ids, id)
	p.mu.Unlock()
}

func (p *published) fail(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

// publishConcurrently publishes per messages from each of goroutines
// goroutines spread over clients, each in order with a "publisher" and a
// "seq" header, and returns the IDs. It fails the test on any error.
func (e *env) publishConcurrently(clients []broker.Broker, topic string, goroutines, per int) []string {
	e.Helper()
	var p published
	var wg sync.WaitGroup
	for g := range goroutines {
		c := clients[g%len(clients)]
		wg.Go(func() {
			for i := range per {
				m := &broker.Message{
					Header: broker.Header{"publisher": strconv.Itoa(g), "seq": strconv.Itoa(i)},
					Body:   []byte(fmt.Sprintf("publisher %d message %d", g, i)),
				}
				ctx, cancel := e.ctx()
				err := c.Publish(ctx, topic, m)
				cancel()
				if err != nil {
					p.fail(fmt.Errorf("publisher %d message %d: %w", g, i, err))
					return
				}
				p.add(m.ID)
			}
		})
	}
	wg.Wait()
	if len(p.errs) > 0 {
		e.Fatalf("%d publishers failed, first: %v", len(p.errs), p.errs[0])
	}
	return p.ids
}

// testConcurrentPublishersAndSubscribers: 8 publishers × 500 messages on 4
// clients, a queue group of 4 members on their own clients with 2 handlers
// each, and a broadcast subscriber: the group handles each message exactly
// once, the subscriber gets each exactly once.
func testConcurrentPublishersAndSubscribers(e *env) {
	pubs := []broker.Broker{e.client(), e.client(), e.client(), e.client()}
	topic, q := e.topic("manypubs"), e.queue("workers")
	group, all := newRecorder(), newRecorder()
	for i := range 4 {
		e.subscribe(e.client(), topic, group.handler(i, nil), broker.Queue(q), broker.Concurrency(2))
	}
	e.subscribe(e.client(), topic, all.handler(0, nil), broker.Concurrency(2))
	ids := e.publishConcurrently(pubs, topic, 8, 500)
	e.waitIDs(group, ids, "queue group")
	e.waitIDs(all, ids, "broadcast subscriber")
	e.settle()
	e.checkExactlyOnce(group, ids, "queue group of 4")
	e.checkExactlyOnce(all, ids, "broadcast subscriber")
	e.Logf("%d messages; queue group deliveries per member: %v", len(ids), group.perMember())
}

// testTenThousandMessages: 10,000 messages from 4 publishers through a
// queue group of 2 members with 4 handlers each: zero lost, zero
// duplicates. The counts and the rate are logged.
func testTenThousandMessages(e *env) {
	pubs := []broker.Broker{e.client(), e.client()}
	topic, q := e.topic("tenk"), e.queue("workers")
	r := newRecorder()
	for i := range 2 {
		e.subscribe(e.client(), topic, r.handler(i, nil), broker.Queue(q), broker.Concurrency(4))
	}
	const n = 10_000
	start := time.Now()
	ids := e.publishConcurrently(pubs, topic, 4, n/4)
	pubTime := time.Since(start)
	e.waitIDs(r, ids, "10,000 messages")
	all := time.Since(start)
	e.settle()
	e.checkExactlyOnce(r, ids, "10,000 messages")
	lost, _ := r.missing(ids)
	e.Logf("%d published in %v, %d delivered (%d distinct, %d lost, %d duplicates) in %v: %.0f msgs/s end to end; per member %v",
		len(ids), pubTime.Round(time.Millisecond), r.len(), r.distinct(), lost, r.len()-r.distinct(), all.Round(time.Millisecond),
		float64(len(ids))/all.Seconds(), r.perMember())
}

// testOrderedPerPublisher (OrderedPerPublisher): the messages each of 4
// concurrent publishers sends one after the other reach a Concurrency(1)
// queue-group member in that order.
func testOrderedPerPublisher(e *env) {
	if !e.f.OrderedPerPublisher {
		e.Skip("Features.OrderedPerPublisher is false: the backend does not keep one publisher's order")
	}
	pubs := []broker.Broker{e.client(), e.client()}
	topic := e.topic("ordered")
	r := newRecorder()
	e.subscribe(e.client(), topic, r.handler(0, nil), broker.Queue(e.queue("workers")), broker.Concurrency(1))
	ids := e.publishConcurrently(pubs, topic, 4, 250)
	e.exactlyOnce(r, ids, "ordered messages")
	last := map[string]int{}
	var bad []string
	for _, d := range r.deliveries() {
		if d.msg.Attempt != 1 {
			continue // a redelivery may come out of order
		}
		p := d.msg.Header.Get("publisher")
		seq, err := strconv.Atoi(d.msg.Header.Get("seq"))
		if err != nil {
			e.Fatalf("message %s has no seq header: %v", d.msg.ID, d.msg.Header)
		}
		if prev, ok := last[p]; ok && seq <= prev {
			bad = append(bad, fmt.Sprintf("publisher %s: %d after %d", p, seq, prev))
		}
		last[p] = seq
	}
	if len(bad) > 0 {
		e.Errorf("%d messages out of publish order, e.g. %s", len(bad), strings.Join(bad[:min(len(bad), 5)], "; "))
	}
}
