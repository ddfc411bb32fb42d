package nats_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/herald-dev/herald/internal/syncbuf"
	"github.com/herald-dev/herald/registry"
	regnats "github.com/herald-dev/herald/registry/nats"
	"github.com/herald-dev/herald/registry/registrytest"
)

// startServer runs a NATS server with JetStream in-process on a random
// port; configure changes its options first.
func startServer(t *testing.T, configure ...func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	}
	for _, c := range configure {
		c(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func connect(t *testing.T, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestConformance(t *testing.T) {
	s := startServer(t)
	runConformance(t, s.ClientURL, registrytest.Features{ExpirySlack: 3 * time.Second})
}

// runConformance runs the registry suite, each registry on a connection of
// its own to the server url returns, opened with opts. A crash closes the
// registry's connection, as a killed process's drops: no heartbeat, no
// purge.
func runConformance(t *testing.T, url func() string, f registrytest.Features, opts ...regnats.Option) {
	var mu sync.Mutex
	conns := map[registry.Registry]*nats.Conn{}
	f.Crash = func(_ *testing.T, r registry.Registry) {
		mu.Lock()
		nc := conns[r]
		mu.Unlock()
		nc.Close()
	}
	registrytest.Run(t, func(t *testing.T) registry.Registry {
		nc, err := nats.Connect(url())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r, err := regnats.New(ctx, nc, opts...)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		conns[r] = nc
		mu.Unlock()
		return r
	}, f)
}

func TestConnectAndOpenURL(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	u, _ := url.Parse(s.ClientURL() + "?bucket=other_registry")
	r, err := regnats.OpenURL(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	in := registry.Instance{Service: "herald.user", ID: "one", Addr: "127.0.0.1:1"}
	if err := r.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	// The instance is in the named bucket, under the documented key.
	js, _ := connect(t, s).JetStream()
	kv, err := js.KeyValue("other_registry")
	if err != nil {
		t.Fatalf("bucket other_registry: %v", err)
	}
	if _, err := kv.Get("herald=user.one"); err != nil {
		t.Fatalf("key herald=user.one: %v", err)
	}
	nc := r.Conn()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if !nc.IsClosed() {
		t.Fatal("Close left the connection it opened open")
	}
	if _, err := kv.Get("herald=user.one"); !errors.Is(err, nats.ErrKeyNotFound) {
		t.Fatalf("after Close: %v, want key not found", err)
	}

	for _, raw := range []string{"nats://", "nats://h:1?x=1", "nats://h:1?bucket=a&bucket=b", "nats://h:1?bucket=a.b", "mem://"} {
		u, _ := url.Parse(raw)
		if _, err := regnats.OpenURL(ctx, u); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("OpenURL(%q): %v, want ErrInvalid", raw, err)
		}
	}
}

func TestNewDoesNotCloseCallersConn(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s)
	r, err := regnats.New(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if nc.IsClosed() {
		t.Fatal("Close closed the caller's connection")
	}
}

func TestBucketWithoutTTLIsRefused(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s)
	js, _ := nc.JetStream()
	if _, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: "plain", History: 5}); err != nil {
		t.Fatal(err)
	}
	_, err := regnats.New(context.Background(), nc, regnats.WithBucket("plain"))
	if !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("New on a bucket without per-key TTL: %v, want ErrInvalid", err)
	}
}

func TestPasswordNotInErrors(t *testing.T) {
	_, err := regnats.Connect(context.Background(), "nats://user:s3cret-pw@127.0.0.1:1")
	if err == nil {
		t.Fatal("connect to a closed port succeeded")
	}
	if got := err.Error(); strings.Contains(got, "s3cret-pw") {
		t.Fatalf("error shows the password: %s", got)
	}
}

// TestHeartbeatSurvivesServerRestart: the NATS server goes away for longer
// than the TTL; once it is back the client reconnects and its heartbeat
// lists the instance again.
func TestHeartbeatSurvivesServerRestart(t *testing.T) {
	dir := t.TempDir()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true}
	s1, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s1.Start()
	if !s1.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	addr := s1.Addr().(*net.TCPAddr)
	nc, err := nats.Connect(s1.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	r, err := regnats.New(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	in := registry.Instance{Service: "herald.user", ID: "survivor", Addr: "127.0.0.1:1"}
	if err := r.Register(ctx, in, registry.TTL(time.Second)); err != nil {
		t.Fatal(err)
	}
	s1.Shutdown()
	s1.WaitForShutdown()
	// Down for longer than the TTL: the record has expired when it returns.
	time.Sleep(1500 * time.Millisecond) //nolint:forbidigo // an outage of a given length is the test
	opts2 := *opts
	opts2.Port = addr.Port
	s2, err := server.NewServer(&opts2)
	if err != nil {
		t.Fatal(err)
	}
	go s2.Start()
	if !s2.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready after restart")
	}
	defer s2.Shutdown()

	observer, err := regnats.New(ctx, connect(t, s2))
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := observer.Lookup(ctx, "herald.user")
		if err == nil && len(got) == 1 && got[0].ID == "survivor" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance not listed again 10s after the server came back: %v %v", got, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// TestLookupWithoutTheLeader: a client whose permissions do not reach the
// stream leader's get (the read barrier) still looks up, from what the
// watch's replica has, and the registry warns that the read may be stale.
func TestLookupWithoutTheLeader(t *testing.T) {
	s := startServer(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "kv", Password: "kv", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.STREAM.MSG.GET.>"}},
		}}}
	})
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("kv", "kv"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx := context.Background()
	var logs syncbuf.Buffer
	r, err := regnats.New(ctx, nc, regnats.WithLogger(logs.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	inst := registry.Instance{Service: "herald.user", ID: "a", Addr: "127.0.0.1:1"}
	if err := r.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	got, err := r.Lookup(ctx, inst.Service)
	if err != nil || len(got) != 1 || got[0].ID != "a" {
		t.Fatalf("Lookup: %v %v, want instance a", got, err)
	}
	if !strings.Contains(logs.String(), "leader did not answer") {
		t.Errorf("no warning of the missing barrier:\n%s", logs.String())
	}
}
