package gcppubsub_test

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
)

// BenchmarkPublishBatch measures publishing 256-byte messages in batches of
// 1,000 to the in-process pstest server, and reports msgs/s.
//
//	go test -run XXX -bench 'PublishBatch|ConsumeAck' -benchtime 5000x ./broker/gcppubsub/
func BenchmarkPublishBatch(b *testing.B) {
	srv := startServer(b)
	br := open(b, srv, "")
	ctx := context.Background()
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
		if err := br.(broker.BatchPublisher).PublishBatch(ctx, "bench.pub", ms[:n]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkConsumeAck measures a queue group member (Concurrency 8)
// handling and acknowledging b.N 256-byte messages published beforehand,
// and reports msgs/s. It fails when a message is lost.
func BenchmarkConsumeAck(b *testing.B) {
	srv := startServer(b)
	br := open(b, srv, "")
	ctx := context.Background()
	var (
		mu   sync.Mutex
		seen = make(map[uint64]bool, b.N)
		done = make(chan struct{})
	)
	// The subscription must exist before the messages are published.
	sub, err := br.Subscribe(ctx, "bench.sub", func(_ context.Context, m *broker.Message) error {
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
	b.SetBytes(256)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if err := broker.PublishBatch(ctx, br, "bench.sub", ms); err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		mu.Lock()
		defer mu.Unlock()
		b.Fatalf("handled %d of %d messages", len(seen), b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
