package httpbroker_test

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/brokertest"
	httpbroker "github.com/herald-dev/herald/broker/http"
	"github.com/herald-dev/herald/registry"
	"github.com/herald-dev/herald/registry/etcd"
	"github.com/herald-dev/herald/registry/mem"
)

// cluster is the backend of one conformance run: a registry store shared by
// every client, each client a broker with its own spool, endpoint and
// registry client, as separate processes would be.
type cluster struct {
	store  *mem.Store
	secret []byte
	// openRegistry, when set, gives each client its registry instead of a
	// client of store.
	openRegistry func(t testing.TB) registry.Registry

	mu   sync.Mutex
	live map[*httpbroker.Broker]bool
}

func newCluster() *cluster {
	s := make([]byte, 32)
	_, _ = rand.Read(s)
	return &cluster{store: mem.NewStore(), secret: s, live: map[*httpbroker.Broker]bool{}}
}

func (c *cluster) open(t testing.TB, opts ...httpbroker.Option) *httpbroker.Broker {
	t.Helper()
	var reg registry.Registry
	if c.openRegistry != nil {
		reg = c.openRegistry(t)
	} else {
		r, err := mem.New(mem.WithStore(c.store))
		if err != nil {
			t.Fatal(err)
		}
		reg = r
	}
	all := append([]httpbroker.Option{
		httpbroker.WithSpool(t.TempDir()),
		httpbroker.WithSecret(c.secret),
		httpbroker.WithCloseRegistry(),
	}, opts...)
	b, err := httpbroker.New(reg, all...)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.live[b] = true
	c.mu.Unlock()
	t.Cleanup(func() {
		c.mu.Lock()
		delete(c.live, b)
		c.mu.Unlock()
		_ = b.Close(context.Background())
	})
	return b
}

// crashAll crashes and restarts every live client (see Broker.Crash).
func (c *cluster) crashAll(t *testing.T) {
	c.mu.Lock()
	bs := make([]*httpbroker.Broker, 0, len(c.live))
	for b := range c.live {
		bs = append(bs, b)
	}
	c.mu.Unlock()
	for _, b := range bs {
		if err := b.Crash(); err != nil {
			t.Fatalf("crash and restart: %v", err)
		}
	}
}

func TestConformance(t *testing.T) {
	c := newCluster()
	brokertest.Run(t, func(t *testing.T) broker.Broker { return c.open(t) }, brokertest.Features{
		Persistent:          true,
		OrderedPerPublisher: true,
		Restart:             c.crashAll,
	})
}

// TestConformanceEtcd runs the suite again with every client on its own
// connection to a real etcd (HERALD_TEST_ETCD_URL), as separate processes
// would be. It takes a minute or more, so it runs with HERALD_LONG=1.
func TestConformanceEtcd(t *testing.T) {
	raw := os.Getenv("HERALD_TEST_ETCD_URL")
	if raw == "" {
		t.Skip("HERALD_TEST_ETCD_URL is not set (scripts/servers/start-etcd.sh starts an etcd)")
	}
	if os.Getenv("HERALD_LONG") != "1" {
		t.Skip("HERALD_LONG is not 1: the etcd conformance run takes a minute or more")
	}
	prefix := "/herald-test/" + broker.NewID() + "/"
	u, err := url.Parse(raw + "?prefix=" + url.QueryEscape(prefix))
	if err != nil {
		t.Fatal(err)
	}
	// Group records have no lease: delete what the run leaves in the shared
	// etcd (registered at the start, so it runs after every client closed).
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := etcd.OpenURL(ctx, u)
		if err != nil {
			t.Errorf("open etcd to clean up: %v", err)
			return
		}
		defer r.Close(ctx)
		if _, err := r.Client().Delete(ctx, prefix, clientv3.WithPrefix()); err != nil {
			t.Errorf("delete the run's keys: %v", err)
		}
	})
	c := newCluster()
	c.openRegistry = func(t testing.TB) registry.Registry {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := etcd.OpenURL(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	brokertest.Run(t, func(t *testing.T) broker.Broker { return c.open(t) }, brokertest.Features{
		Persistent:          true,
		OrderedPerPublisher: true,
		Restart:             c.crashAll,
	})
}
