package kafka_test

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
)

// BenchmarkPublishBatch measures publishing 256-byte messages in batches of
// 1,000 through the idempotent producer (acks=all) to an in-process kfake
// cluster, and reports msgs/s.
//
//	go test -run XXX -bench 'PublishBatch|ConsumeAck' -benchtime 20000x ./broker/kafka/
func BenchmarkPublishBatch(b *testing.B) {
	c := startCluster(b)
	br := c.open(b)
	ctx := context.Background()
	topic := name(b, "benchpub")
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
		if err := br.PublishBatch(ctx, topic, ms[:n]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkConsumeAck measures a queue group member (Concurrency 8)
// handling and acknowledging (committing) b.N 256-byte messages published
// beforehand, and reports msgs/s. It fails when a message is lost.
func BenchmarkConsumeAck(b *testing.B) {
	c := startCluster(b)
	br := c.open(b)
	ctx := context.Background()
	topic := name(b, "benchsub")
	const batch = 1000
	for sent := 0; sent < b.N; sent += batch {
		n := min(batch, b.N-sent)
		ms := make([]*broker.Message, n)
		for i := range n {
			body := make([]byte, 256)
			binary.BigEndian.PutUint64(body, uint64(sent+i))
			ms[i] = &broker.Message{Body: body}
		}
		if err := br.PublishBatch(ctx, topic, ms); err != nil {
			b.Fatal(err)
		}
	}
	var (
		mu   sync.Mutex
		seen = make(map[uint64]bool, b.N)
		done = make(chan struct{})
	)
	b.SetBytes(256)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	sub, err := br.Subscribe(ctx, topic, func(_ context.Context, m *broker.Message) error {
		mu.Lock()
		seen[binary.BigEndian.Uint64(m.Body)] = true
		if len(seen) == b.N {
			close(done)
		}
		mu.Unlock()
		return nil
	}, broker.Queue("bench"), broker.Concurrency(8))
	if err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		mu.Lock()
		defer mu.Unlock()
		b.Fatalf("handled %d of %d messages", len(seen), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if err := sub.Unsubscribe(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
