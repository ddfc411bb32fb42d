package resolve_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald/registry"
	"github.com/herald-dev/herald/registry/mem"
	"github.com/herald-dev/herald/registry/resolve"
)

// server is a real HTTP server that says its name and counts its requests.
type server struct {
	name string
	srv  *httptest.Server
	hits atomic.Int32
}

func newServer(t *testing.T, name string) *server {
	t.Helper()
	s := &server{name: name}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", name, r.URL.Path, body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) inst(service string) registry.Instance {
	return registry.Instance{Service: service, ID: s.name, Addr: strings.TrimPrefix(s.srv.URL, "http://")}
}

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

// TestTransportSpreadsAndDropsGone: calls by service name are spread over
// two real servers, round robin; once one deregisters and shuts down
// mid-test, every call goes to the other and none fails.
func TestTransportSpreadsAndDropsGone(t *testing.T) {
	ctx := context.Background()
	store := mem.NewStore()
	servers, _ := mem.New(mem.WithStore(store))
	defer servers.Close(ctx)
	clientReg, _ := mem.New(mem.WithStore(store))
	defer clientReg.Close(ctx)

	a, b := newServer(t, "a"), newServer(t, "b")
	for _, s := range []*server{a, b} {
		if err := servers.Register(ctx, s.inst("herald.user")); err != nil {
			t.Fatal(err)
		}
	}
	tr := &resolve.Transport{Registry: clientReg}
	defer tr.Close()
	c := &http.Client{Transport: tr}

	for i := range 20 {
		got := get(t, c, "http://herald.user/users/1")
		if !strings.HasSuffix(got, " /users/1 ") {
			t.Fatalf("call %d: %q", i, got)
		}
	}
	if a.hits.Load() != 10 || b.hits.Load() != 10 {
		t.Fatalf("hits a=%d b=%d, want 10 each (round robin)", a.hits.Load(), b.hits.Load())
	}

	// a leaves: deregistered, then shut down.
	if err := servers.Deregister(ctx, a.inst("herald.user")); err != nil {
		t.Fatal(err)
	}
	a.srv.Close()
	waitUntil(t, "the resolver to drop a", func() bool {
		return !strings.HasPrefix(get(t, c, "http://herald.user/x"), "a ") && b.hits.Load() > 10 && len(tr.Resolvers()) == 1 && len(tr.Resolvers()[0].Instances()) == 1
	})
	before := b.hits.Load()
	for range 10 {
		if got := get(t, c, "http://herald.user/after"); !strings.HasPrefix(got, "b ") {
			t.Fatalf("after a left: %q", got)
		}
	}
	if n := b.hits.Load() - before; n != 10 {
		t.Fatalf("b got %d of 10 calls after a left", n)
	}
}

// TestTransportSkipsCrashedInstance: an instance that crashed (its server
// is gone but its registration has not expired yet) refuses connections:
// the call goes to the other instance at once, with its body, and the
// crashed one is skipped for the cooldown.
func TestTransportSkipsCrashedInstance(t *testing.T) {
	ctx := context.Background()
	reg, _ := mem.New()
	defer reg.Close(ctx)
	a, b := newServer(t, "a"), newServer(t, "b")
	for _, s := range []*server{a, b} {
		if err := reg.Register(ctx, s.inst("herald.email")); err != nil {
			t.Fatal(err)
		}
	}
	a.srv.Close() // crashed: still listed
	tr := &resolve.Transport{Registry: reg, Options: []resolve.Option{resolve.WithCooldown(time.Minute)}}
	defer tr.Close()
	c := &http.Client{Transport: tr}
	for i := range 10 {
		resp, err := c.Post("http://herald.email/send", "text/plain", strings.NewReader(fmt.Sprintf("body %d", i)))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("b /send body %d", i); string(got) != want {
			t.Fatalf("call %d: %q, want %q", i, got, want)
		}
	}
	if b.hits.Load() != 10 {
		t.Fatalf("b served %d of 10", b.hits.Load())
	}
}

func TestResolverPickAndFailed(t *testing.T) {
	ctx := context.Background()
	reg, _ := mem.New()
	defer reg.Close(ctx)
	r, err := resolve.New(ctx, reg, "svc", resolve.WithCooldown(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Pick(); !errors.Is(err, resolve.ErrNoInstance) || !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Pick with no instance: %v", err)
	}
	x := registry.Instance{Service: "svc", ID: "x", Addr: "127.0.0.1:1"}
	y := registry.Instance{Service: "svc", ID: "y", Addr: "https://10.0.0.1:8443/base"}
	for _, in := range []registry.Instance{x, y} {
		if err := reg.Register(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "both instances", func() bool { return len(r.Instances()) == 2 })
	seen := map[string]int{}
	for range 4 {
		in, err := r.Pick()
		if err != nil {
			t.Fatal(err)
		}
		seen[in.ID]++
	}
	if seen["x"] != 2 || seen["y"] != 2 {
		t.Fatalf("picks %v, want 2 each", seen)
	}
	urls := map[string]bool{}
	for range 2 {
		u, err := r.BaseURL()
		if err != nil {
			t.Fatal(err)
		}
		urls[u] = true
	}
	if !urls["http://127.0.0.1:1"] || !urls["https://10.0.0.1:8443/base"] {
		t.Fatalf("BaseURLs %v", urls)
	}
	r.Failed(x)
	for range 3 {
		if in, _ := r.Pick(); in.ID != "y" {
			t.Fatalf("picked %s while x cools down", in.ID)
		}
	}
	r.Failed(y) // every instance down: still picks rather than fails
	if _, err := r.Pick(); err != nil {
		t.Fatalf("Pick with every instance cooling down: %v", err)
	}
	// Registering again ends the cooldown.
	if err := reg.Deregister(ctx, x); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "x to go", func() bool { return len(r.Instances()) == 1 })
	if err := reg.Register(ctx, x); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "x to come back", func() bool { return len(r.Instances()) == 2 })
	got := map[string]bool{}
	for range 2 {
		in, _ := r.Pick()
		got[in.ID] = true
	}
	if !got["x"] {
		t.Fatalf("x, registered again, is still skipped: %v", got)
	}
}

func TestTransportPassesAddressesThrough(t *testing.T) {
	s := newServer(t, "direct")
	reg, _ := mem.New()
	defer reg.Close(context.Background())
	tr := &resolve.Transport{Registry: reg}
	defer tr.Close()
	c := &http.Client{Transport: tr}
	if got := get(t, c, s.srv.URL+"/p"); got != "direct /p " {
		t.Fatalf("direct call: %q", got)
	}
	if _, err := c.Get("http://unknown.service/"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("call to a service with no instance: %v, want ErrNotFound", err)
	}
}

func TestNewErrors(t *testing.T) {
	reg, _ := mem.New()
	ctx := context.Background()
	if _, err := resolve.New(ctx, nil, "svc"); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("nil registry: %v", err)
	}
	if _, err := resolve.New(ctx, reg, "bad name"); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := resolve.New(ctx, reg, "svc", resolve.WithCooldown(0)); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("zero cooldown: %v", err)
	}
	_ = reg.Close(ctx)
	if _, err := resolve.New(ctx, reg, "svc"); !errors.Is(err, registry.ErrClosed) {
		t.Errorf("closed registry: %v", err)
	}
}
