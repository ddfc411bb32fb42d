package redis_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/redis"
	"github.com/herald-dev/herald/internal/bench"
	"github.com/herald-dev/herald/internal/bench/redisraw"
)

// TestBaselineRatio measures Herald's Redis backend and the raw go-redis
// baseline (pipelined XADD; XREADGROUP + XACK, see redisraw) in the same
// process against the same server, 256-byte messages, and logs the ratios
// (target ≥ 0.8). Both sides are measured the same way: publish n messages
// in pipelines of redisraw.Batch (Herald: one PublishBatch, which pipelines
// 1,000 at a time) to a stream whose group exists with no consumer, then consume and acknowledge them all. Rounds alternate raw and
// Herald and the median of each is compared, because an fsync-bound server
// on a shared machine varies from second to second. An end-to-end run
// (internal/bench, as `herald bench broker`) checks that nothing is lost or
// duplicated. It fails on a lost or duplicated message, not on a low ratio.
//
//	HERALD_BENCH=1 go test -run BaselineRatio -v ./broker/redis/
//
// HERALD_BENCH_MESSAGES sets n (30,000 by default), HERALD_BENCH_ROUNDS the
// rounds (3), HERALD_BENCH_PREFETCH the prefetch.
func TestBaselineRatio(t *testing.T) {
	if os.Getenv("HERALD_BENCH") == "" {
		t.Skip("HERALD_BENCH is not set: this measures throughput against the raw client for a while")
	}
	url := serverURL(t)
	n, rounds := envInt("HERALD_BENCH_MESSAGES", 30_000), envInt("HERALD_BENCH_ROUNDS", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	opts := []redis.Option{withPrefix()}
	if v := envInt("HERALD_BENCH_PREFETCH", 0); v > 0 {
		opts = append(opts, redis.WithPrefetch(v))
	}
	b := open(t, opts...)

	var rawPub, rawCons, hPub, hCons []float64
	for range rounds {
		p, c, err := redisraw.Run(ctx, url, n, 256)
		if err != nil {
			t.Fatal(err)
		}
		rawPub, rawCons = append(rawPub, p), append(rawCons, c)
		p, c, err = publishThenConsume(ctx, b, n, 256, n) // one PublishBatch: the backend pipelines it as the raw client does
		if err != nil {
			t.Fatal(err)
		}
		hPub, hCons = append(hPub, p), append(hCons, c)
	}
	t.Logf("%d messages of 256 bytes, batch %d, concurrency 1, %d rounds (raw / herald per round)", n, redisraw.Batch, rounds)
	t.Logf("publish: raw %v, herald %v", round(rawPub), round(hPub))
	t.Logf("consume+ack: raw %v, herald %v", round(rawCons), round(hCons))
	t.Logf("median ratios: publish %.2f, consume+ack %.2f", median(hPub)/median(rawPub), median(hCons)/median(rawCons))

	res, err := bench.Run(ctx, b, bench.Config{Messages: n, Size: 256, Publishers: 1, Batch: redisraw.Batch, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("end to end (internal/bench, consumer live while publishing): published %.0f/s, delivered %.0f/s, p50 %.2fms, p99 %.2fms, lost %d, duplicates %d",
		res.PublishedPerSec, res.DeliveredPerSec, res.P50ms, res.P99ms, res.Lost, res.Duplicates)
	if res.Lost != 0 || res.Duplicates != 0 {
		t.Errorf("lost %d, duplicates %d; want 0 and 0", res.Lost, res.Duplicates)
	}
}

// publishThenConsume measures b as the raw baselines measure their client: a
// queue group is created and left with no member, n messages are published
// in PublishBatch calls of batch messages, then a Concurrency(1) member
// handles and acknowledges them all. It fails on a lost or duplicated
// message.
func publishThenConsume(ctx context.Context, b broker.Broker, n, size, batch int) (pub, cons float64, err error) {
	topic := "bench." + broker.NewID()[24:]
	nop := func(context.Context, *broker.Message) error { return nil }
	opts := []broker.SubscribeOption{broker.Queue("bench"), broker.Concurrency(1)}
	sub, err := b.Subscribe(ctx, topic, nop, opts...)
	if err != nil {
		return 0, 0, err
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	ms := make([]*broker.Message, 0, batch)
	for first := 0; first < n; first += batch {
		ms = ms[:0]
		for i := first; i < min(first+batch, n); i++ {
			body := make([]byte, size)
			binary.BigEndian.PutUint64(body, uint64(i))
			ms = append(ms, &broker.Message{Body: body})
		}
		if err := broker.PublishBatch(ctx, b, topic, ms); err != nil {
			return 0, 0, err
		}
	}
	pub = float64(n) / time.Since(start).Seconds()

	seen := make([]atomic.Bool, n)
	var got, dups atomic.Int64
	done := make(chan struct{})
	start = time.Now()
	sub, err = b.Subscribe(ctx, topic, func(_ context.Context, m *broker.Message) error {
		if seen[binary.BigEndian.Uint64(m.Body)].Swap(true) {
			dups.Add(1)
			return nil
		}
		if got.Add(1) == int64(n) {
			close(done)
		}
		return nil
	}, opts...)
	if err != nil {
		return 0, 0, err
	}
	defer sub.Unsubscribe(context.WithoutCancel(ctx))
	select {
	case <-done:
	case <-time.After(time.Minute):
		return 0, 0, errors.New("consumed " + strconv.FormatInt(got.Load(), 10) + " of " + strconv.Itoa(n) + " in a minute")
	}
	cons = float64(n) / time.Since(start).Seconds()
	if d := dups.Load(); d > 0 {
		return 0, 0, errors.New(strconv.FormatInt(d, 10) + " duplicates")
	}
	return pub, cons, nil
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func round(xs []float64) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x)
	}
	return out
}
