package kafka_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
)

// cluster is an in-process kfake cluster that can be restarted on the same
// ports and data directory.
type cluster struct {
	mu    sync.Mutex
	c     *kfake.Cluster
	ports []int
	dir   string
}

// fast group timing for tests: joins and leaves take a heartbeat.
var testOptions = []kafka.Option{
	kafka.WithGroupTiming(100*time.Millisecond, 1500*time.Millisecond),
	kafka.WithPartitions(4),
	kafka.WithRevokeGrace(2 * time.Second),
}

func startCluster(t testing.TB) *cluster {
	t.Helper()
	c := &cluster{dir: t.TempDir()}
	c.start(t)
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.c.Close()
	})
	return c
}

func (c *cluster) start(t testing.TB) {
	t.Helper()
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DataDir(c.dir),
		kfake.GroupMinSessionTimeout(500 * time.Millisecond),
		kfake.SeedTopics(1, "kfake-ready"),
	}
	if c.ports != nil {
		opts = append(opts, kfake.Ports(c.ports...))
	}
	var (
		k   *kfake.Cluster
		err error
	)
	// A port just released may take a moment to be free again.
	for deadline := time.Now().Add(10 * time.Second); ; {
		k, err = kfake.NewCluster(opts...)
		if err == nil || time.Now().After(deadline) {
			break
		}
		<-time.After(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	c.c = k
	if c.ports == nil {
		for _, a := range k.ListenAddrs() {
			_, p, _ := net.SplitHostPort(a)
			n, _ := strconv.Atoi(p)
			c.ports = append(c.ports, n)
		}
	}
}

func (c *cluster) addrs() []string {
	out := make([]string, len(c.ports))
	for i, p := range c.ports {
		out[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return out
}

// restart stops the cluster and starts it again on its ports and data.
func (c *cluster) restart(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c.Close()
	c.start(t)
}

// open returns a new client of the cluster, closed when the test ends.
func (c *cluster) open(t testing.TB, opts ...kafka.Option) *kafka.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := kafka.New(ctx, c.addrs(), append(append([]kafka.Option{}, testOptions...), opts...)...)
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}

// collector gathers deliveries from a handler.
type collector struct {
	mu  sync.Mutex
	got []broker.Message
	ch  chan struct{}
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1)} }

func (c *collector) add(m *broker.Message) {
	c.mu.Lock()
	c.got = append(c.got, *m.Clone())
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func (c *collector) all() []broker.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]broker.Message(nil), c.got...)
}

// wait waits until the collector has n messages.
func (c *collector) wait(t testing.TB, n int, timeout time.Duration) []broker.Message {
	t.Helper()
	deadline := time.After(timeout)
	for c.len() < n {
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("got %d messages, want %d within %v", c.len(), n, timeout)
		}
	}
	return c.all()
}

func name(t testing.TB, s string) string {
	return fmt.Sprintf("kt.%s.%d", s, time.Now().UnixNano())
}
