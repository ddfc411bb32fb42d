package httpbroker_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	httpbroker "github.com/herald-dev/herald/broker/http"
	"github.com/herald-dev/herald/registry/etcd"
)

// The burst tests run the subscriber as a separate process (this test
// binary, re-executed) so that it can be killed with SIGKILL, and find it
// through a real etcd (HERALD_TEST_ETCD_URL), the only registry here that
// two processes share.
const (
	childEnv        = "HERALD_HTTPBROKER_CHILD"
	childRegistry   = "HERALD_HTTPBROKER_CHILD_REGISTRY"
	childSpool      = "HERALD_HTTPBROKER_CHILD_SPOOL"
	childTopic      = "HERALD_HTTPBROKER_CHILD_TOPIC"
	childSecretHex  = "HERALD_HTTPBROKER_CHILD_SECRET"
	burstQueueGroup = "burst"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild is the subscriber process: it joins the queue group and writes
// the sequence number of every message it handles to stdout before
// acknowledging it, so the parent sees every handled message even when the
// child is killed the next instant. It exits when stdin closes.
func runChild() int {
	ctx := context.Background()
	u, err := url.Parse(os.Getenv(childRegistry))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	reg, err := etcd.OpenURL(ctx, u)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	b, err := httpbroker.New(reg,
		httpbroker.WithSpool(os.Getenv(childSpool)),
		httpbroker.WithSecret([]byte(os.Getenv(childSecretHex))),
		httpbroker.WithRegisterTTL(2*time.Second),
		httpbroker.WithCloseRegistry())
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	var mu sync.Mutex
	line := make([]byte, 0, 24)
	_, err = b.Subscribe(ctx, os.Getenv(childTopic), func(_ context.Context, m *broker.Message) error {
		if len(m.Body) < 8 {
			return broker.Permanent(fmt.Errorf("short body"))
		}
		mu.Lock()
		defer mu.Unlock()
		line = strconv.AppendUint(line[:0], binary.BigEndian.Uint64(m.Body), 10)
		line = append(line, '\n')
		_, err := os.Stdout.Write(line)
		return err
	}, broker.Queue(burstQueueGroup), broker.Concurrency(4))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.Close(cctx); err != nil {
		fmt.Fprintln(os.Stderr, "child: close:", err)
		return 1
	}
	return 0
}

// burst is one run: the deliveries seen from the subscriber processes.
type burst struct {
	n        int
	seen     []atomic.Uint32
	distinct atomic.Int64
	dups     atomic.Int64
	last     atomic.Int64 // Unix ns of the last new delivery
}

// child is one subscriber process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // its stdout is drained
}

func (r *burst) start(t *testing.T, env []string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
				continue
			}
			seq, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil || seq >= uint64(r.n) {
				continue
			}
			if r.seen[seq].Add(1) == 1 {
				r.distinct.Add(1)
				r.last.Store(time.Now().UnixNano())
			} else {
				r.dups.Add(1)
			}
		}
	}()
	select {
	case <-ready:
	case <-c.done:
		t.Fatal("the subscriber process exited before it was ready")
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the subscriber process was not ready after 20s")
	}
	return c
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill() {
	_ = c.cmd.Process.Kill() // SIGKILL
	_ = c.cmd.Wait()
	<-c.done
}

// stop closes its stdin (a graceful exit) and waits.
func (c *child) stop(t *testing.T) {
	_ = c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("subscriber process: %v", err)
		}
	case <-time.After(30 * time.Second):
		c.kill()
		t.Error("subscriber process did not exit within 30s of its stdin closing")
	}
	<-c.done
}

// runBurst publishes n 256-byte messages from 64 goroutines to a queue
// group served by a subscriber process, SIGKILLs that process once killAt
// messages were handled (if killAt > 0) and starts another, and waits until
// every message was handled or nothing new arrived for 30s.
func runBurst(t *testing.T, n, killAt int) {
	raw := os.Getenv("HERALD_TEST_ETCD_URL")
	if raw == "" {
		t.Skip("HERALD_TEST_ETCD_URL is not set: the subscriber process needs a registry shared between processes (scripts/servers/start-etcd.sh starts one)")
	}
	regURL := raw + "?prefix=" + url.QueryEscape("/herald-test/"+broker.NewID()+"/")
	topic := "burst." + broker.NewID()[24:]
	secret := "burst test secret, 32 bytes long"
	env := []string{childEnv + "=1", childRegistry + "=" + regURL, childTopic + "=" + topic, childSecretHex + "=" + secret}

	ctx := context.Background()
	u, _ := url.Parse(regURL)
	reg, err := etcd.OpenURL(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := httpbroker.New(reg, httpbroker.WithSpool(t.TempDir()), httpbroker.WithSecret([]byte(secret)), httpbroker.WithCloseRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(ctx)

	r := &burst{n: n, seen: make([]atomic.Uint32, n)}
	first := r.start(t, append(env, childSpool+"="+t.TempDir()))
	current := first

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var pubErrs atomic.Int64
	for range 64 {
		wg.Go(func() {
			for {
				seq := next.Add(1) - 1
				if seq >= int64(n) {
					return
				}
				body := make([]byte, 256)
				binary.BigEndian.PutUint64(body, uint64(seq))
				if err := pub.Publish(ctx, topic, &broker.Message{Body: body}); err != nil {
					pubErrs.Add(1)
				}
			}
		})
	}
	killed := false
	var killedAt int64
	var restartTook time.Duration
	published := make(chan struct{})
	go func() { wg.Wait(); close(published) }()
	lastProgress, lastCount := time.Now(), int64(0)
	for r.distinct.Load() < int64(n) {
		if killAt > 0 && !killed && r.distinct.Load() >= int64(killAt) {
			killedAt = r.distinct.Load()
			t0 := time.Now()
			current.kill()
			current = r.start(t, append(env, childSpool+"="+t.TempDir()))
			restartTook = time.Since(t0)
			killed = true
		}
		if c := r.distinct.Load(); c > lastCount {
			lastCount, lastProgress = c, time.Now()
		} else if time.Since(lastProgress) > 30*time.Second {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	<-published
	elapsed := time.Duration(r.last.Load() - start.UnixNano())
	current.stop(t)
	got := int(r.distinct.Load())
	lost := n - got
	rate := float64(got) / elapsed.Seconds()
	s := pub.Stats()
	t.Logf("burst: %d messages × 256 B, 64 publishers, 1 queue-group subscriber process (Concurrency 4)", n)
	if killAt > 0 {
		t.Logf("burst: subscriber SIGKILLed after %d handled, new process ready in %v", killedAt, restartTook.Round(time.Millisecond))
	}
	t.Logf("burst: delivered %d (lost %d, duplicates %d, publish errors %d) in %v: %.0f msg/s; publisher stats %+v",
		got, lost, r.dups.Load(), pubErrs.Load(), elapsed.Round(time.Millisecond), rate, s)
	if lost != 0 || pubErrs.Load() != 0 {
		t.Fatalf("%d of %d messages lost, %d publish errors", lost, n, pubErrs.Load())
	}
	if killAt == 0 && r.dups.Load() != 0 {
		t.Errorf("%d duplicates without a crash", r.dups.Load())
	}
}

func burstSize() int {
	if os.Getenv("HERALD_LONG") == "1" {
		return 100_000
	}
	return 10_000
}

// TestBurstSubscriberProcess: a burst to one queue-group subscriber in
// another process: nothing lost, no duplicate. 100,000 messages with
// HERALD_LONG=1, 10,000 otherwise.
func TestBurstSubscriberProcess(t *testing.T) {
	runBurst(t, burstSize(), 0)
}

// TestBurstSubscriberKilled: the same burst with the subscriber process
// SIGKILLed a third of the way through and a new one started: nothing lost
// (duplicates allowed: the killed process's unacknowledged messages).
func TestBurstSubscriberKilled(t *testing.T) {
	n := burstSize()
	runBurst(t, n, n/3)
}
