package sqs_test

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
)

// BenchmarkPublishBatch measures publishing 256-byte messages through
// broker.PublishBatch (concurrent SNS Publish calls: there is no batch
// publisher) to the in-process kumo emulator, and reports msgs/s.
//
//	go test -run XXX -bench 'PublishBatch|ConsumeAck' -benchtime 5000x ./broker/sqs/
func BenchmarkPublishBatch(b *testing.B) {
	br := open(b, "")
	ctx := context.Background()
	topic := unique("benchpub")
	// A queue group, so that the messages go somewhere.
	sub, err := br.Subscribe(ctx, topic, func(context.Context, *broker.Message) error { return nil }, broker.Queue("bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe(ctx)
	const batch = 1000
	ms := make([]*broker.Message, batch)
	b.SetBytes(256)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; sent += batch {
		n := min(batch, b.N-sent)
		for i := range n {
			ms[i] = &broker.Message{Body: make([]byte, 256)}
		}
		if err := broker.PublishBatch(ctx, br, topic, ms[:n]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkConsumeAck measures a queue group member (Concurrency 8)
// receiving, handling and deleting b.N 256-byte messages published
// beforehand, and reports msgs/s. It fails when a message is lost.
func BenchmarkConsumeAck(b *testing.B) {
	br := open(b, "")
	ctx := context.Background()
	topic := unique("benchsub")
	var (
		mu      sync.Mutex
		seen    = make(map[uint64]bool, b.N)
		done    = make(chan struct{})
		started = make(chan struct{})
	)
	// The queue must exist before the messages are published: subscribe,
	// and hold the handler until they are.
	sub, err := br.Subscribe(ctx, topic, func(_ context.Context, m *broker.Message) error {
		<-started
		mu.Lock()
		defer mu.Unlock()
		if len(seen) < b.N {
			seen[binary.BigEndian.Uint64(m.Body)] = true
			if len(seen) == b.N {
				close(done)
			}
		}
		return nil
	}, broker.Queue("bench"), broker.Concurrency(8))
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe(ctx)
	ms := make([]*broker.Message, b.N)
	for i := range ms {
		body := make([]byte, 256)
		binary.BigEndian.PutUint64(body, uint64(i))
		ms[i] = &broker.Message{Body: body}
	}
	if err := broker.PublishBatch(ctx, br, topic, ms); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(256)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	close(started)
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		mu.Lock()
		defer mu.Unlock()
		b.Fatalf("handled %d of %d messages", len(seen), b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
