package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/registry"
	"github.com/herald-dev/herald/registry/etcd"
	"github.com/herald-dev/herald/registry/registrytest"
)

// etcdURL returns the etcd of HERALD_TEST_ETCD_URL with a key prefix no
// other run uses, or skips the test.
func etcdURL(t *testing.T) string {
	t.Helper()
	raw := os.Getenv("HERALD_TEST_ETCD_URL")
	if raw == "" {
		t.Skip("HERALD_TEST_ETCD_URL is not set (e.g. etcd://127.0.0.1:2379; scripts/servers/start-etcd.sh starts one)")
	}
	prefix := "/herald-test/" + broker.NewID() + "/"
	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	return raw + sep + "prefix=" + url.QueryEscape(prefix)
}

func open(t *testing.T, raw string) *etcd.Registry {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := etcd.OpenURL(ctx, u)
	if err != nil {
		t.Fatalf("OpenURL: %v", err)
	}
	return r
}

func TestConformance(t *testing.T) {
	raw := etcdURL(t)
	registrytest.Run(t, func(t *testing.T) registry.Registry { return open(t, raw) }, registrytest.Features{
		Crash: func(_ *testing.T, r registry.Registry) { r.(*etcd.Registry).Kill() },
		// etcd raises a 1s lease to its minimum (2s on a default server) and
		// checks expiry every 500ms.
		ExpirySlack: 3 * time.Second,
	})
}

// TestWatchAfterCompaction: a watch keeps reporting changes across a
// compaction of the history it started from.
func TestWatchAfterCompaction(t *testing.T) {
	raw := etcdURL(t)
	r := open(t, raw)
	defer r.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := registry.Instance{Service: "svc", ID: "a", Addr: "127.0.0.1:1"}
	if err := r.Register(ctx, a); err != nil {
		t.Fatal(err)
	}
	ch, err := r.Watch(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Type != registry.Added || ev.Instance.ID != "a" {
		t.Fatalf("first event %v %+v", ev.Type, ev.Instance)
	}
	// Changes, then a compaction past them.
	b := registry.Instance{Service: "svc", ID: "b", Addr: "127.0.0.1:2"}
	if err := r.Register(ctx, b); err != nil {
		t.Fatal(err)
	}
	resp, err := r.Client().Get(ctx, "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Client().Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	c := registry.Instance{Service: "svc", ID: "c", Addr: "127.0.0.1:3"}
	if err := r.Register(ctx, c); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case ev := <-ch:
			if ev.Type == registry.Added {
				seen[ev.Instance.ID] = true
			}
		case <-ctx.Done():
			t.Fatalf("saw %v, want b and c", seen)
		}
	}
	if !seen["b"] || !seen["c"] {
		t.Fatalf("saw %v, want b and c", seen)
	}
}

func TestOpenURLErrors(t *testing.T) {
	for _, raw := range []string{
		"etcd://",
		"etcd://127.0.0.1:2379/path",
		"etcd://127.0.0.1:2379?unknown=1",
		"etcd://127.0.0.1:2379?prefix=nope",
		"etcd://127.0.0.1:2379?prefix=/a/&prefix=/b/",
		"etcd://127.0.0.1:2379?dial_timeout=soon",
		"etcd://127.0.0.1:2379?dial_timeout=-1s",
		"etcd://127.0.0.1:2379,,127.0.0.1:2380",
		"mem://",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		_, err = etcd.OpenURL(context.Background(), u)
		if !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("OpenURL(%q): %v, want ErrInvalid", raw, err)
		}
	}
}

func TestOpenURLUnreachableKeepsPasswordOut(t *testing.T) {
	u, _ := url.Parse("etcd://user:s3cret-pw@127.0.0.1:1?dial_timeout=300ms")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := etcd.OpenURL(ctx, u)
	if err == nil {
		t.Fatal("OpenURL of a port nothing listens on: no error")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("error shows the password: %v", err)
	}
}

func TestNewNeedsEndpoints(t *testing.T) {
	if _, err := etcd.New(); !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("New(): %v, want ErrInvalid", err)
	}
	for _, opt := range []etcd.Option{etcd.WithPrefix("x"), etcd.WithDialTimeout(0), etcd.WithEndpoints(), etcd.WithClient(nil), etcd.WithLogger(nil)} {
		if _, err := etcd.New(etcd.WithEndpoints("127.0.0.1:2379"), opt); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("New with a bad option: %v, want ErrInvalid", err)
		}
	}
}

// TestLeaseLostRegistersAgain: when a registration's lease is lost (here
// revoked behind the client's back, as happens when etcd was unreachable
// for longer than the TTL), the client puts the instance again on a new
// lease.
func TestLeaseLostRegistersAgain(t *testing.T) {
	raw := etcdURL(t)
	r, obs := open(t, raw), open(t, raw)
	defer r.Close(context.Background())
	defer obs.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := registry.Instance{Service: "svc", ID: "a", Addr: "127.0.0.1:1"}
	if err := r.Register(ctx, a, registry.TTL(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	ch, err := obs.Watch(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Type != registry.Added {
		t.Fatalf("first event %v", ev.Type)
	}
	resp, err := r.Client().Get(ctx, "/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, kv := range resp.Kvs {
		if strings.HasSuffix(string(kv.Key), "/svc/a") && kv.Lease != 0 {
			if _, err := r.Client().Revoke(ctx, clientv3.LeaseID(kv.Lease)); err != nil {
				t.Fatal(err)
			}
			revoked++
		}
	}
	if revoked != 1 {
		t.Fatalf("revoked %d leases, want 1", revoked)
	}
	for _, want := range []registry.EventType{registry.Removed, registry.Added} {
		select {
		case ev := <-ch:
			if ev.Type != want || ev.Instance.ID != "a" {
				t.Fatalf("event %v %s, want %v a", ev.Type, ev.Instance.ID, want)
			}
		case <-ctx.Done():
			t.Fatalf("no %v event", want)
		}
	}
	got, err := obs.Lookup(ctx, "svc")
	if err != nil || len(got) != 1 || got[0].Addr != a.Addr {
		t.Fatalf("Lookup after the lease was lost: %+v, %v", got, err)
	}
}

// ExampleOpenURL registers an instance in etcd and watches its service.
func ExampleOpenURL() {
	u, _ := url.Parse("etcd://127.0.0.1:2379?dial_timeout=2s")
	ctx := context.Background()
	r, err := etcd.OpenURL(ctx, u)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close(ctx)
	_ = r.Register(ctx, registry.Instance{Service: "herald.user", ID: "u1", Addr: "127.0.0.1:8080"}, registry.TTL(5*time.Second))
	ch, _ := r.Watch(ctx, "herald.user")
	ev := <-ch
	fmt.Printf("%s %s/%s\n", ev.Type, ev.Instance.Service, ev.Instance.ID)
}
