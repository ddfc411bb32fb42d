package dedupestore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/kafka"
	"github.com/herald-dev/herald/broker/mem"
	natsbroker "github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/broker/nats/natsserver/natsservertest"
	"github.com/herald-dev/herald/broker/redis"
	"github.com/herald-dev/herald/internal/dedupestore"
	"github.com/herald-dev/herald/internal/serverlock"
	"github.com/herald-dev/herald/metrics"
	"github.com/herald-dev/herald/middleware"
)

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func closeBroker(t *testing.T, b broker.Broker) {
	t.Cleanup(func() { _ = b.Close(context.Background()) })
}

func open(t *testing.T, spec string, b broker.Broker) *dedupestore.Store {
	t.Helper()
	s, err := dedupestore.Open(ctx(t), spec, b, dedupestore.Config{Name: "email"})
	if err != nil {
		t.Fatalf("Open(%q): %v", spec, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// sharedByTwo checks that what one process's store records, another's sees:
// a claim by a is busy for b, a completion by a is done for b. It returns
// the key it used.
func sharedByTwo(t *testing.T, a, b middleware.DedupeStore) string {
	t.Helper()
	k := broker.NewID()
	if r, err := a.Claim(ctx(t), k, "a", time.Minute); err != nil || r != middleware.Claimed {
		t.Fatalf("claim on a: %v %v", r, err)
	}
	if r, err := b.Claim(ctx(t), k, "b", time.Minute); err != nil || r != middleware.Busy {
		t.Fatalf("claim on b: %v %v, want busy", r, err)
	}
	if err := a.Complete(ctx(t), k, "a"); err != nil {
		t.Fatal(err)
	}
	if r, err := b.Claim(ctx(t), k, "b", time.Minute); err != nil || r != middleware.Done {
		t.Fatalf("claim on b after a completed: %v %v, want done", r, err)
	}
	return k
}

func TestBrokerOnNATS(t *testing.T) {
	srv, err := natsserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	var stores []*dedupestore.Store
	for range 2 { // two replicas, two connections
		b, err := natsbroker.New(ctx(t), srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		closeBroker(t, b)
		// Behind the metrics wrapper, as herald serve email may run it.
		m, err := metrics.New(prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, open(t, dedupestore.Broker, m.Wrap(b)))
	}
	if s := stores[0]; s.Where != "NATS KV bucket herald_dedupe_email" || !s.Shared {
		t.Fatalf("store %q shared=%v", s.Where, s.Shared)
	}
	sharedByTwo(t, stores[0], stores[1])
}

// TestBrokerOnNATSCluster opens the store on a broker with replicas=3 on a
// three-node cluster, behind the metrics wrapper: the bucket gets the
// streams' three replicas. A replica asking for one later does not take
// two of them away.
func TestBrokerOnNATSCluster(t *testing.T) {
	nodes := natsservertest.StartCluster(t, 3)
	b, err := natsbroker.New(ctx(t), natsservertest.URL(nodes...), natsbroker.WithReplicas(3))
	if err != nil {
		t.Fatal(err)
	}
	closeBroker(t, b)
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var js jetstream.JetStream
	if !b.As(&js) {
		t.Fatal("no JetStream")
	}
	replicas := func() int {
		t.Helper()
		kv, err := js.KeyValue(ctx(t), "herald_dedupe_email")
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		return st.(*jetstream.KeyValueBucketStatus).Config().Replicas
	}

	first := open(t, dedupestore.Broker, m.Wrap(b))
	if got := replicas(); got != 3 {
		t.Fatalf("bucket replicas %d, want the broker's 3", got)
	}
	fewer, err := dedupestore.Open(ctx(t), dedupestore.Broker, b, dedupestore.Config{Name: "email", Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fewer.Close() })
	if got := replicas(); got != 3 {
		t.Fatalf("bucket replicas %d after a store asked for 1, want 3 kept", got)
	}
	sharedByTwo(t, first, fewer)
}

func TestBrokerOnRedis(t *testing.T) {
	u := os.Getenv("HERALD_TEST_REDIS_URL")
	if u == "" {
		t.Skip("HERALD_TEST_REDIS_URL is not set: this test needs a Redis server")
	}
	serverlock.Use(t, "redis") // broker/redis's tests restart it
	var stores []*dedupestore.Store
	var c *goredis.Client
	for range 2 {
		b, err := redis.New(ctx(t), u)
		if err != nil {
			t.Fatal(err)
		}
		closeBroker(t, b)
		if !broker.As(b, &c) {
			t.Fatal("the Redis broker does not expose its client")
		}
		stores = append(stores, open(t, dedupestore.Broker, b))
	}
	if s := stores[0]; s.Where != "Redis keys herald:dedupe:email:*" || !s.Shared {
		t.Fatalf("store %q shared=%v", s.Where, s.Shared)
	}
	k := sharedByTwo(t, stores[0], stores[1])
	if n := c.Del(ctx(t), "herald:dedupe:email:"+k).Val(); n != 1 {
		t.Fatalf("the record of %s is not the key herald:dedupe:email:%s", k, k)
	}
}

func TestBrokerOnMem(t *testing.T) {
	b := mem.New()
	closeBroker(t, b)
	s := open(t, dedupestore.Broker, b)
	if _, ok := s.DedupeStore.(*middleware.MemoryDedupeStore); !ok || s.Shared {
		t.Fatalf("store on mem: %T shared=%v", s.DedupeStore, s.Shared)
	}
}

// TestBrokerUnsupported: an engine with no place for the records is an
// error, never a silent per-process store.
func TestBrokerUnsupported(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b, err := kafka.New(ctx(t), c.ListenAddrs())
	if err != nil {
		t.Fatal(err)
	}
	closeBroker(t, b)
	if _, err := dedupestore.Open(ctx(t), dedupestore.Broker, b, dedupestore.Config{Name: "email"}); !errors.Is(err, dedupestore.ErrUnsupported) {
		t.Fatalf("on kafka: %v, want ErrUnsupported", err)
	}
	// A wrapper that hides what it wraps is no engine Open knows either.
	hidden := struct{ broker.Broker }{mem.New()}
	closeBroker(t, hidden)
	if _, err := dedupestore.Open(ctx(t), dedupestore.Broker, hidden, dedupestore.Config{Name: "email"}); !errors.Is(err, dedupestore.ErrUnsupported) {
		t.Fatalf("on an opaque broker: %v, want ErrUnsupported", err)
	}
}

func TestDatabase(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "email.db")
	a, b := open(t, url, nil), open(t, url, nil)
	if a.Where != url || a.Shared {
		t.Fatalf("store %q shared=%v", a.Where, a.Shared)
	}
	sharedByTwo(t, a, b) // one file, two connections
	if u := os.Getenv("HERALD_TEST_POSTGRES_URL"); u != "" {
		if s := open(t, u, nil); !s.Shared || strings.Contains(s.Where, ":herald@") {
			t.Fatalf("postgres store %q shared=%v: want shared, password redacted", s.Where, s.Shared)
		}
	}
}

func TestInvalid(t *testing.T) {
	b := mem.New()
	closeBroker(t, b)
	for name, tc := range map[string]struct {
		spec string
		b    broker.Broker
		c    dedupestore.Config
	}{
		"no name":       {dedupestore.Broker, b, dedupestore.Config{}},
		"bad name":      {dedupestore.Broker, b, dedupestore.Config{Name: "a.b"}},
		"no broker":     {dedupestore.Broker, nil, dedupestore.Config{Name: "email"}},
		"unknown spec":  {"redis", b, dedupestore.Config{Name: "email"}},
		"bad database":  {"oracle://x", b, dedupestore.Config{Name: "email"}},
		"bad retention": {dedupestore.Broker, b, dedupestore.Config{Name: "email", Retention: time.Second}},
		"negative":      {dedupestore.Broker, b, dedupestore.Config{Name: "email", Retention: -time.Hour}},
		"replicas":      {dedupestore.Broker, b, dedupestore.Config{Name: "email", Replicas: 6}},
	} {
		if _, err := dedupestore.Open(ctx(t), tc.spec, tc.b, tc.c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
