package gomicro_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	herald "github.com/herald-dev/herald/broker"
	httpbroker "github.com/herald-dev/herald/broker/http"
	"github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/gomicro"
	regmem "github.com/herald-dev/herald/registry/mem"
	mb "go-micro.dev/v5/broker"
	"go-micro.dev/v5/registry"
)

// Burst settings: what a burst of sign-ups looks like to the email service.
const (
	burstSize       = 256              // bytes per message
	burstPublishers = 8                // goroutines publishing
	burstWait       = 30 * time.Second // longest wait for the deliveries once the burst is published
	burstStall      = 5 * time.Second  // stop waiting after this long without a delivery (after the burst)
)

// burstResult is one line of the comparison.
type burstResult struct {
	name              string
	sent, publishErrs int
	delivered, dups   int
	lost              int
	took              time.Duration // first publish to last delivery
	stalled           bool
}

func (r burstResult) String() string {
	rate := 0.0
	if r.took > 0 {
		rate = float64(r.delivered) / r.took.Seconds()
	}
	end := "all delivered"
	if r.lost > 0 {
		end = fmt.Sprintf("gave up %v after the burst", burstWait)
		if r.stalled {
			end = fmt.Sprintf("gave up after %v without a delivery", burstStall)
		}
	}
	return fmt.Sprintf("%-40s messages=%-6d publish_errors=%-6d delivered=%-6d (%5.1f%%) lost=%-6d duplicates=%-4d msg/s=%-8.0f %s",
		r.name, r.sent, r.publishErrs, r.delivered, 100*float64(r.delivered)/float64(r.sent), r.lost, r.dups, rate, end)
}

// burst publishes n messages through pub as fast as burstPublishers
// goroutines can, to one subscriber on sub, and counts what arrives within
// the bounded wait. Messages carry their index, so loss and duplicates are
// counted per message.
func burst(t *testing.T, name string, pub, sub mb.Broker, n int, subOpts ...mb.SubscribeOption) burstResult {
	t.Helper()
	topic := topicFor(t)
	seen := make([]atomic.Int32, n)
	var delivered, dups atomic.Int64
	var last atomic.Int64 // unix nanos of the last delivery
	s, err := sub.Subscribe(topic, func(e mb.Event) error {
		body := e.Message().Body
		if len(body) < 8 {
			return nil
		}
		i := binary.BigEndian.Uint64(body)
		if i >= uint64(n) {
			return nil
		}
		if seen[i].Add(1) == 1 {
			delivered.Add(1)
		} else {
			dups.Add(1)
		}
		last.Store(time.Now().UnixNano())
		return nil
	}, subOpts...)
	if err != nil {
		t.Fatalf("%s: subscribe: %v", name, err)
	}
	defer func() { _ = s.Unsubscribe() }()

	start := time.Now()
	var publishErrs atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range burstPublishers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				body := make([]byte, burstSize)
				binary.BigEndian.PutUint64(body, uint64(i))
				if err := pub.Publish(topic, &mb.Message{Header: map[string]string{"Content-Type": "application/octet-stream"}, Body: body}); err != nil {
					publishErrs.Add(1)
				}
			}
		})
	}
	wg.Wait()

	// The wait is bounded from the end of the burst: publishing 100,000
	// messages can itself take longer than burstWait.
	published := time.Now()
	deadline := published.Add(burstWait)
	stalled := false
	for int(delivered.Load()) < n {
		now := time.Now()
		if now.After(deadline) {
			break
		}
		l := last.Load()
		if l < published.UnixNano() {
			l = published.UnixNano()
		}
		if now.Sub(time.Unix(0, l)) > burstStall {
			stalled = true
			break
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
	d := int(delivered.Load())
	took := time.Duration(0)
	if l := last.Load(); l > 0 {
		took = time.Unix(0, l).Sub(start)
	}
	return burstResult{name: name, sent: n, publishErrs: int(publishErrs.Load()), delivered: d,
		dups: int(dups.Load()), lost: n - d, took: took, stalled: stalled && d < n}
}

// goMicroHTTP returns two of Go Micro's own HTTP brokers (publisher and
// subscriber, as two processes would have) found through one registry.
func goMicroHTTP(t *testing.T) (pub, sub mb.Broker) {
	t.Helper()
	reg := registry.NewMemoryRegistry()
	mk := func() mb.Broker {
		b := mb.NewHttpBroker(mb.Registry(reg), mb.Addrs("127.0.0.1:0"))
		if err := b.Init(); err != nil {
			t.Fatal(err)
		}
		if err := b.Connect(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Disconnect() })
		return b
	}
	return mk(), mk()
}

// heraldNATS returns two plugins over Herald's NATS JetStream backend, each
// with its own connection to one embedded server storing on file (the
// default of `herald up`).
func heraldNATS(t *testing.T) (pub, sub mb.Broker) {
	t.Helper()
	srv, err := natsserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	mk := func() mb.Broker {
		hb, err := nats.New(context.Background(), srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		b := gomicro.New(hb, gomicro.CloseOnDisconnect(), gomicro.WithStartDelay(0))
		if err := b.Connect(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Disconnect() })
		return b
	}
	return mk(), mk()
}

// heraldHTTP returns two plugins over Herald's peer-to-peer HTTP broker,
// each with its own spool and endpoint, found through one registry store.
func heraldHTTP(t *testing.T) (pub, sub mb.Broker) {
	t.Helper()
	store := regmem.NewStore()
	secret := []byte("burst-test-secret-burst-test-secret")
	mk := func() mb.Broker {
		reg, err := regmem.New(regmem.WithStore(store))
		if err != nil {
			t.Fatal(err)
		}
		hb, err := httpbroker.New(reg, httpbroker.WithSpool(t.TempDir()), httpbroker.WithSecret(secret), httpbroker.WithCloseRegistry())
		if err != nil {
			t.Fatal(err)
		}
		b := gomicro.New(hb, gomicro.CloseOnDisconnect(), gomicro.WithStartDelay(0))
		if err := b.Connect(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Disconnect() })
		return b
	}
	return mk(), mk()
}

// TestBurst compares Go Micro's own HTTP broker with Herald's NATS JetStream
// backend, and Herald's HTTP broker, through this plugin on a burst of
// messages, and requires Herald to lose none. It logs one line per case (go test -v -run TestBurst). The
// 100,000-message burst runs with HERALD_LONG=1.
func TestBurst(t *testing.T) {
	sizes := []int{2000}
	if os.Getenv("HERALD_LONG") == "1" {
		sizes = append(sizes, 100000)
	}
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			pub, sub := goMicroHTTP(t)
			r := burst(t, "go-micro http broker", pub, sub, n)
			t.Log(r)

			pub, sub = heraldNATS(t)
			r = burst(t, "herald nats (gomicro plugin)", pub, sub, n)
			t.Log(r)
			if r.lost != 0 || r.publishErrs != 0 {
				t.Errorf("Herald lost %d of %d messages (%d publish errors)", r.lost, n, r.publishErrs)
			}

			pub, sub = heraldNATS(t)
			r = burst(t, "herald nats (plugin, concurrency 16)", pub, sub, n, gomicro.SubscribeWith(herald.Concurrency(16)))
			t.Log(r)
			if r.lost != 0 || r.publishErrs != 0 {
				t.Errorf("Herald lost %d of %d messages (%d publish errors)", r.lost, n, r.publishErrs)
			}

			pub, sub = heraldHTTP(t)
			r = burst(t, "herald http (gomicro plugin)", pub, sub, n)
			t.Log(r)
			if r.lost != 0 || r.publishErrs != 0 {
				t.Errorf("Herald lost %d of %d messages (%d publish errors)", r.lost, n, r.publishErrs)
			}
		})
	}
}
