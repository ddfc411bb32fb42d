package brokertest

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
)

// Environment of the consumer process started by [KillConsumer].
const (
	envKillChild = "HERALD_KILL_CHILD"
	envKillTopic = "HERALD_KILL_TOPIC"
	envKillQueue = "HERALD_KILL_QUEUE"
)

// KillConsumer proves that a queue group loses nothing when its only
// member's process is killed: it publishes n messages of 256 bytes to a
// fresh topic whose group is served by a child process, SIGKILLs that
// process once a third were handled, starts another, and fails unless every
// message was handled. Duplicates (handled but not yet acknowledged when the
// process died) are counted and allowed.
//
// The child process is this test binary running the test named child, whose
// body must be a call to [KillConsumerChild] with the same open. Both open
// brokers of the same backend:
//
//	func TestKillConsumer(t *testing.T)      { brokertest.KillConsumer(t, open, "TestKillConsumerChild", 100_000) }
//	func TestKillConsumerChild(t *testing.T) { brokertest.KillConsumerChild(t, open) }
func KillConsumer(t *testing.T, open func(t *testing.T) broker.Broker, child string, n int) {
	t.Helper()
	b := open(t)
	id := randomToken()
	topic, queue := "kill."+id, "kill-"+id // engines name groups globally
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// Create the group, so it keeps what is published before a member runs.
	sub, err := b.Subscribe(ctx, topic, func(context.Context, *broker.Message) error { return nil }, broker.Queue(queue))
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}

	seen := make([]atomic.Int32, n)
	var distinct, deliveries atomic.Int64
	startChild := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.count=1")
		cmd.Env = append(os.Environ(), envKillChild+"=1", envKillTopic+"="+topic, envKillQueue+"="+queue)
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

	first := startChild()
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
	waitGrowing(t, &distinct, int64(n/3), "a third of the messages handled by the first consumer")
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	killedAt := distinct.Load()
	startChild()
	waitGrowing(t, &distinct, int64(n), "every message handled after the restart")
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

// KillConsumerChild is the consumer process of [KillConsumer]: it prints
// "seq N" for each message before acknowledging it, until killed. Run
// outside KillConsumer, it skips.
func KillConsumerChild(t *testing.T, open func(t *testing.T) broker.Broker) {
	if os.Getenv(envKillChild) == "" {
		t.Skip("the consumer process of KillConsumer, run by it")
	}
	b := open(t)
	var mu sync.Mutex
	_, err := b.Subscribe(context.Background(), os.Getenv(envKillTopic), func(_ context.Context, m *broker.Message) error {
		mu.Lock()
		defer mu.Unlock()
		_, err := fmt.Fprintf(os.Stdout, "seq %d\n", binary.BigEndian.Uint64(m.Body))
		return err
	}, broker.Queue(os.Getenv(envKillQueue)), broker.Concurrency(4), broker.AckWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	select {} // until killed
}

// waitGrowing waits until count reaches target, failing the test when it
// stops growing for 60 s.
func waitGrowing(t *testing.T, count *atomic.Int64, target int64, what string) {
	t.Helper()
	last, since := count.Load(), time.Now()
	for count.Load() < target {
		<-time.After(10 * time.Millisecond) // polling a counter fed by another process's output
		if c := count.Load(); c != last {
			last, since = c, time.Now()
		} else if time.Since(since) > 60*time.Second {
			t.Fatalf("waiting for %s: stuck at %d of %d for 60s", what, c, target)
		}
	}
}
