package chaos_test

import (
	"context"
	"encoding/binary"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	natsbroker "github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/broker/nats/natsserver"
)

// TestSoakBroker runs the NATS JetStream broker (embedded server and client
// in this process) at a steady rate for HERALD_SOAK (a duration, e.g. 10m),
// one queue group consuming, and samples this process's resident memory
// every 30 s. It fails if a message is lost or duplicated, or if memory
// still grows after warm-up (see the check at the end).
// A documented run, not part of CI:
//
//	HERALD_SOAK=10m go test -run TestSoakBroker -timeout 20m -v ./chaos/
func TestSoakBroker(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("HERALD_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("HERALD_SOAK is not set (e.g. 10m): the soak is a documented run, not part of CI")
	}
	rate := 2000 // messages per second
	if r, err := strconv.Atoi(os.Getenv("HERALD_SOAK_RATE")); err == nil && r > 0 {
		rate = r
	}
	srv, err := natsserver.Start(natsserver.WithPort(-1), natsserver.WithDataDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx := context.Background()
	b, err := natsbroker.New(ctx, srv.ClientURL(), natsbroker.WithMaxAge(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })

	total := int(d.Seconds()) * rate
	seen := make([]atomic.Uint32, total)
	var handled atomic.Int64
	sub, err := b.Subscribe(ctx, "soak.steady", func(_ context.Context, m *broker.Message) error {
		seq := binary.BigEndian.Uint64(m.Body)
		if seq < uint64(total) && seen[seq].Add(1) == 1 {
			handled.Add(1)
		}
		return nil
	}, broker.Queue("soak"), broker.Concurrency(8))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe(context.Background()) })

	// Publish in batches of rate/10 every 100 ms: a steady rate.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	sample := time.NewTicker(30 * time.Second)
	defer sample.Stop()
	var rss []int64
	per := max(1, rate/10)
	start := time.Now()
	for seq := 0; seq < total; {
		select {
		case <-sample.C:
			rss = append(rss, residentKiB(t))
			t.Logf("%v: published %d, handled %d, RSS %d KiB, goroutines %d",
				time.Since(start).Round(time.Second), seq, handled.Load(), rss[len(rss)-1], runtime.NumGoroutine())
		case <-tick.C:
			batch := make([]*broker.Message, 0, per)
			for ; len(batch) < per && seq < total; seq++ {
				body := make([]byte, 256)
				binary.BigEndian.PutUint64(body, uint64(seq))
				batch = append(batch, &broker.Message{Body: body})
			}
			if err := broker.PublishBatch(ctx, b, "soak.steady", batch); err != nil {
				t.Fatalf("publish at %d: %v", seq, err)
			}
		}
	}
	deadline := time.Now().Add(time.Minute)
	for handled.Load() < int64(total) && time.Now().Before(deadline) {
		<-time.After(100 * time.Millisecond) // polling a counter
	}
	dups := 0
	for i := range seen {
		if seen[i].Load() > 1 {
			dups++
		}
	}
	lost := total - int(handled.Load())
	t.Logf("soak: %v at %d msgs/s: published %d, lost %d, duplicated %d; RSS samples (KiB) %v", d, rate, total, lost, dups, rss)
	if lost != 0 || dups != 0 {
		t.Fatalf("lost %d, duplicated %d", lost, dups)
	}
	// Memory grows until the stream holds a whole retention window (1 min,
	// WithMaxAge above) and its caches are warm: samples from the first
	// 2 min are warm-up. After that, the second half of the samples must
	// not peak more than 25 % above the first half's peak.
	if warm := rss[min(len(rss), 4):]; len(warm) >= 2 {
		first, second := int64(0), int64(0)
		for i, r := range warm {
			if i < len(warm)/2 {
				first = max(first, r)
			} else {
				second = max(second, r)
			}
		}
		t.Logf("after warm-up: first-half peak %d KiB, second-half peak %d KiB", first, second)
		if float64(second) > 1.25*float64(first) {
			t.Fatalf("memory grew after warm-up: first-half peak %d KiB, second-half peak %d KiB", first, second)
		}
	}
}

// residentKiB is this process's resident set size.
func residentKiB(t *testing.T) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
