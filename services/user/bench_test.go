package user_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/crypto/bcrypt"

	"github.com/herald-dev/herald/broker/mem"
	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/gen/herald/user/v1/userv1connect"
	"github.com/herald-dev/herald/internal/dbtest"
	"github.com/herald-dev/herald/services/user"
)

// benchCost is the bcrypt cost of the benchmarks: HERALD_BENCH_BCRYPT_COST,
// or the service's default.
func benchCost(b *testing.B) int {
	if s := os.Getenv("HERALD_BENCH_BCRYPT_COST"); s != "" {
		c, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("HERALD_BENCH_BCRYPT_COST=%q: %v", s, err)
		}
		return c
	}
	return user.DefaultBcryptCost
}

// cpuTime is the CPU time the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cores measures f: its wall time and the cores the process used meanwhile
// (less than GOMAXPROCS when other processes share the machine).
func cores(f func()) (wall time.Duration, used float64) {
	c0, t0 := cpuTime(), time.Now()
	f()
	wall = time.Since(t0)
	return wall, (cpuTime() - c0).Seconds() / wall.Seconds()
}

// benchSlots is HERALD_BENCH_HASH_CONCURRENCY, or 0 (the default).
func benchSlots(b *testing.B) int {
	if s := os.Getenv("HERALD_BENCH_HASH_CONCURRENCY"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("HERALD_BENCH_HASH_CONCURRENCY=%q: %v", s, err)
		}
		return n
	}
	return 0
}

// bcryptBound measures how many bcrypt hashes per second all cores make at
// cost, for about d: the most registrations per second the service could
// reach, since each one hashes once.
func bcryptBound(cost int, d time.Duration) float64 {
	var (
		n    atomic.Int64
		wg   sync.WaitGroup
		stop = time.Now().Add(d)
	)
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if _, err := bcrypt.GenerateFromPassword([]byte("benchmark-password"), cost); err != nil {
					panic(err)
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

// BenchmarkBcryptBound reports bcrypt hashes per second on all cores at the
// benchmark cost.
func BenchmarkBcryptBound(b *testing.B) {
	cost := benchCost(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := bcrypt.GenerateFromPassword([]byte("benchmark-password"), cost); err != nil {
				b.Error(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}

// BenchmarkRegister registers users through the real server (Connect over
// HTTP, SQLite, outbox, relay to an in-process broker) from many concurrent
// clients, and reports registrations per second beside the bcrypt bound
// measured in the same run (before and after, averaged), and their ratio.
func BenchmarkRegister(b *testing.B) {
	cost := benchCost(b)
	br := mem.New()
	srv, err := user.NewServer(user.Config{
		DatabaseURL:     dbtest.URL(b, dbtest.Engines()[0]),
		BcryptCost:      cost,
		HashConcurrency: benchSlots(b),
		Broker:          br,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Shutdown(context.Background()) })
	client := userv1connect.NewUserServiceClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, "http://"+srv.Addr())

	// The bound is measured just before and just after the run, and the
	// cores the process got in each phase are reported: on a shared machine
	// they differ, and the per-core ratio shows what the service costs.
	var before, after float64
	_, boundCores1 := cores(func() { before = bcryptBound(cost, time.Second) })
	var seq atomic.Int64
	b.SetParallelism(4) // 4 clients per core keep every hashing slot busy
	b.ResetTimer()
	elapsed, runCores := cores(func() {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := seq.Add(1)
				if _, err := create(ctx, client, "", "Bench", fmt.Sprintf("bench-%d@example.com", i), "benchmark-password"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.StopTimer()
	_, boundCores2 := cores(func() { after = bcryptBound(cost, time.Second) })

	rate := float64(b.N) / elapsed.Seconds()
	bound := (before + after) / 2
	boundCores := (boundCores1 + boundCores2) / 2
	b.ReportMetric(rate, "registrations/s")
	b.ReportMetric(bound, "bcrypt-hashes/s")
	b.ReportMetric(rate/bound, "ratio")
	b.ReportMetric(runCores, "run-cores")
	b.ReportMetric(boundCores, "bound-cores")
	b.ReportMetric((rate/runCores)/(bound/boundCores), "ratio-per-core")
	b.ReportMetric(float64(cost), "cost")
}

// BenchmarkGetUnderLoad measures Get latency while 4 clients per core keep
// registering (every hashing slot busy), and reports its p50 and p99.
func BenchmarkGetUnderLoad(b *testing.B) {
	cost := benchCost(b)
	srv, err := user.NewServer(user.Config{
		DatabaseURL:     dbtest.URL(b, dbtest.Engines()[0]),
		BcryptCost:      cost,
		HashConcurrency: benchSlots(b),
		Broker:          mem.New(),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Shutdown(context.Background()) })
	client := userv1connect.NewUserServiceClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, "http://"+srv.Addr())
	u, err := create(ctx, client, "", "Reader", fmt.Sprintf("reader-%d@example.com", time.Now().UnixNano()), "benchmark-password")
	if err != nil {
		b.Fatal(err)
	}

	loadCtx, stop := context.WithCancel(ctx)
	var (
		wg  sync.WaitGroup
		seq atomic.Int64
	)
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for loadCtx.Err() == nil {
				i := seq.Add(1)
				create(loadCtx, client, "", "Load", fmt.Sprintf("load-%d-%d@example.com", time.Now().UnixNano(), i), "benchmark-password")
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // let the load ramp up before measuring; not synchronisation
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := client.Get(ctx, connect.NewRequest(&userv1.GetRequest{Id: u.GetId()})); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	stop()
	wg.Wait()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(seq.Load())/b.Elapsed().Seconds(), "registrations/s")
}
