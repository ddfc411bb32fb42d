package redis_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/redis"
)

// TestKillConsumer publishes 100,000 messages to a queue group whose only
// member runs in a child process (this test binary, TestKillConsumerChild),
// kills that process with SIGKILL once a third of the messages were handled,
// starts another, and checks that every message is handled: 0 lost.
// Duplicates (handled, not yet acknowledged when killed) are counted and
// allowed. It takes a while: set HERALD_LONG=1.
func TestKillConsumer(t *testing.T) {
	if os.Getenv("HERALD_LONG") == "" {
		t.Skip("HERALD_LONG is not set: this 100,000-message run with a killed consumer takes a while")
	}
	serverURL(t)
	n := envInt("HERALD_KILL_MESSAGES", 100_000)
	p, topic := prefix(), "kill.test"
	b := open(t, redis.WithPrefix(p))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// Create the group, so it keeps what is published before a member runs.
	sub, err := b.Subscribe(ctx, topic, func(context.Context, *broker.Message) error { return nil }, broker.Queue("workers"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}

	seen := make([]atomic.Int32, n)
	var distinct, deliveries atomic.Int64
	child := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillConsumerChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "HERALD_KILL_CHILD=1", "HERALD_KILL_PREFIX="+p, "HERALD_KILL_TOPIC="+topic)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				seq, ok := strings.CutPrefix(sc.Text(), "seq ")
				if !ok {
					continue
				}
				i, err := strconv.Atoi(seq)
				if err != nil || i < 0 || i >= n {
					continue
				}
				deliveries.Add(1)
				if seen[i].Add(1) == 1 {
					distinct.Add(1)
				}
			}
		}()
		return cmd
	}

	first := child()
	start := time.Now()
	var wg sync.WaitGroup
	var pubErr error
	wg.Go(func() {
		const batch = 1000
		for i := 0; i < n; i += batch {
			ms := make([]*broker.Message, 0, batch)
			for j := i; j < min(i+batch, n); j++ {
				body := make([]byte, 256)
				binary.BigEndian.PutUint64(body, uint64(j))
				ms = append(ms, &broker.Message{Body: body})
			}
			if err := broker.PublishBatch(ctx, b, topic, ms); err != nil {
				pubErr = err
				return
			}
		}
	})
	waitFor(t, func() bool { return distinct.Load() >= int64(n/3) }, "a third of the messages handled by the first consumer", &distinct)
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	killedAt := distinct.Load()
	child()
	waitFor(t, func() bool { return distinct.Load() >= int64(n) }, "every message handled after the restart", &distinct)
	wg.Wait()
	if pubErr != nil {
		t.Fatalf("publish: %v", pubErr)
	}
	lost := 0
	for i := range seen {
		if seen[i].Load() == 0 {
			lost++
		}
	}
	t.Logf("%d messages in %v; consumer killed (SIGKILL) after %d handled and restarted; %d deliveries, %d lost, %d duplicates (allowed: handled but not acknowledged when killed)",
		n, time.Since(start).Round(time.Millisecond), killedAt, deliveries.Load(), lost, deliveries.Load()-int64(n-lost))
	if lost != 0 {
		t.Errorf("%d of %d messages lost", lost, n)
	}
}

// waitFor polls cond, failing the test when count stops growing for 60s.
func waitFor(t *testing.T, cond func() bool, what string, count *atomic.Int64) {
	t.Helper()
	last, since := count.Load(), time.Now()
	for !cond() {
		<-time.After(10 * time.Millisecond)
		if c := count.Load(); c != last {
			last, since = c, time.Now()
		} else if time.Since(since) > 60*time.Second {
			t.Fatalf("waiting for %s: stuck at %d for 60s", what, c)
		}
	}
}

// TestKillConsumerChild is the consumer process of TestKillConsumer: it
// prints "seq N" for each message before acknowledging it, until killed.
func TestKillConsumerChild(t *testing.T) {
	if os.Getenv("HERALD_KILL_CHILD") == "" {
		t.Skip("the consumer process of TestKillConsumer, run by it")
	}
	b := open(t, redis.WithPrefix(os.Getenv("HERALD_KILL_PREFIX")))
	var mu sync.Mutex
	_, err := b.Subscribe(context.Background(), os.Getenv("HERALD_KILL_TOPIC"), func(_ context.Context, m *broker.Message) error {
		mu.Lock()
		defer mu.Unlock()
		_, err := fmt.Fprintf(os.Stdout, "seq %d\n", binary.BigEndian.Uint64(m.Body))
		return err
	}, broker.Queue("workers"), broker.Concurrency(4), broker.AckWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	select {} // until killed
}
