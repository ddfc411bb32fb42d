package mem_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
)

// BenchmarkPublishConsume measures the throughput of the whole path:
// one goroutine publishes b.N messages of 256 bytes, one Concurrency(1)
// subscriber handles and acknowledges them. It fails when a message is lost,
// duplicated or out of order, and reports msgs/s.
//
//	go test -run XXX -bench PublishConsume -benchtime 2000000x ./broker/mem/
func BenchmarkPublishConsume(b *testing.B) {
	ctx := context.Background()
	br := mem.New()
	defer br.Close(ctx)

	var (
		next uint64 // the sequence number the handler expects; one handler at a time
		bad  uint64
		done = make(chan struct{})
	)
	n := uint64(b.N)
	_, err := br.Subscribe(ctx, "bench.events", func(_ context.Context, m *broker.Message) error {
		if binary.BigEndian.Uint64(m.Body) != next {
			bad++
		}
		next++
		if next == n {
			close(done)
		}
		return nil
	}, broker.Queue("bench"), broker.Concurrency(1))
	if err != nil {
		b.Fatal(err)
	}

	body := make([]byte, 256)
	m := &broker.Message{Body: body}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range n {
		binary.BigEndian.PutUint64(body, i)
		m.ID = ""
		if err := br.Publish(ctx, "bench.events", m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("handled %d of %d messages", next, n) // racy read, but the benchmark has failed anyway
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if bad != 0 {
		b.Fatalf("%d of %d messages out of order, lost or duplicated", bad, n)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
}
