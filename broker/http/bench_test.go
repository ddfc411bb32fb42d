package httpbroker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/herald-dev/herald/internal/bench"
)

// BenchmarkBurst publishes b.N 256-byte messages to a queue-group
// subscriber (Concurrency 4) of the same broker, over HTTP on loopback,
// through the project's bench harness, and reports the rates. Publish waits
// for the spool's fsync, so one sequential publisher is bound by the disk;
// concurrent publishers and batches share commits.
func BenchmarkBurst(b *testing.B) {
	for _, c := range []struct{ publishers, batch int }{{1, 1}, {64, 1}, {1, 100}} {
		b.Run(fmt.Sprintf("publishers=%d/batch=%d", c.publishers, c.batch), func(b *testing.B) {
			br := newCluster().open(b)
			b.ResetTimer()
			res, err := bench.Run(context.Background(), br, bench.Config{
				Messages: max(b.N, 100), Size: 256, Publishers: c.publishers, Batch: c.batch, Concurrency: 4, Idle: 10 * time.Second,
			})
			if err != nil {
				b.Fatal(err)
			}
			if res.Lost > 0 {
				b.Errorf("%d of %d messages lost", res.Lost, res.Messages)
			}
			b.ReportMetric(res.DeliveredPerSec, "delivered/s")
			b.ReportMetric(res.PublishedPerSec, "published/s")
			b.ReportMetric(res.P99ms, "p99-ms")
		})
	}
}
