// Package registrytest is the conformance suite of [registry.Registry]:
// every implementation runs [Run], and so can a third party's.
//
// The suite opens several clients of one backend (an in-process store, a
// NATS server, an etcd cluster) and checks what one client registers is what
// the others see: lookups, watch events, updates, deregistration, lease
// expiry after a client stops renewing, and what Close does; and, for
// registries that implement [registry.Recorder], that records outlive their
// clients. Each behaviour is its own subtest; subtests run in parallel and use their own service
// names, so one backend serves the whole run.
package registrytest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald/registry"
)

// Features says what the suite may expect of an implementation and how to
// drive it.
type Features struct {
	// Crash stops r the way a killed process stops: its heartbeats end and
	// its connection goes away, and nothing is deregistered. The suite then
	// expects r's instances to disappear once their TTL has passed. Nil
	// skips the expiry tests, with a message saying so.
	Crash func(t *testing.T, r registry.Registry)
	// ExpirySlack is how long after the TTL an expired instance may take to
	// disappear (lease timers have a granularity). Zero means 4s.
	ExpirySlack time.Duration
	// LeaseTTL is the TTL of the instances the lease tests register (the
	// heartbeat, expiry and record tests). Zero means 1s, the shortest a
	// registry must accept; a backend whose renewals may stall longer than
	// that on a loaded test machine (a replicated cluster under -race)
	// gives more, so that a live instance is not expired by the machine.
	LeaseTTL time.Duration
}

// Open returns a new client of the backend under test. Every call within one
// Run must return a client of the same backend, so that what one registers
// the others see. The suite closes the clients it opens.
type Open func(t *testing.T) registry.Registry

// Run runs the suite against the registries open returns.
func Run(t *testing.T, open Open, f Features) {
	t.Helper()
	if f.ExpirySlack == 0 {
		f.ExpirySlack = 4 * time.Second
	}
	if f.LeaseTTL == 0 {
		f.LeaseTTL = time.Second
	}
	s := &suite{open: open, f: f}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"RegisterLookup", s.testRegisterLookup},
		{"SeveralInstances", s.testSeveralInstances},
		{"Update", s.testUpdate},
		{"Deregister", s.testDeregister},
		{"OtherClientSees", s.testOtherClientSees},
		{"NamesDoNotOverlap", s.testNamesDoNotOverlap},
		{"LookupUnknown", s.testLookupUnknown},
		{"InvalidNames", s.testInvalid},
		{"HeartbeatKeepsAlive", s.testHeartbeat},
		{"ExpiryAfterCrash", s.testExpiry},
		{"WatchInitial", s.testWatchInitial},
		{"WatchEvents", s.testWatchEvents},
		{"WatchEndsWithContext", s.testWatchEndsWithContext},
		{"WatchEndsOnClose", s.testWatchEndsOnClose},
		{"CloseDeregisters", s.testCloseDeregisters},
		{"ClosedRefuses", s.testClosedRefuses},
		{"MetadataIsCopied", s.testMetadataCopied},
		{"Concurrent", s.testConcurrent},
		{"RecordOutlivesClose", s.testRecordOutlivesClose},
		{"RecordOutlivesCrash", s.testRecordOutlivesCrash},
		{"RecordReplacesRegistration", s.testRecordReplacesRegistration},
		{"RecordUpdate", s.testRecordUpdate},
		{"RecordRefuses", s.testRecordRefuses},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t)
		})
	}
}

type suite struct {
	open Open
	f    Features
}

// client opens a client that is closed when the test ends.
func (s *suite) client(t *testing.T) registry.Registry {
	t.Helper()
	r := s.open(t)
	if r == nil {
		t.Fatal("open returned a nil registry")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

var serial atomic.Int64

// service returns a service name no other test uses.
func service(t *testing.T) string {
	t.Helper()
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	return fmt.Sprintf("rt.%s.%d-%d", name, time.Now().UnixNano()%1e6, serial.Add(1))
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func inst(svc, id string) registry.Instance {
	return registry.Instance{Service: svc, ID: id, Addr: "127.0.0.1:" + fmt.Sprint(1000+len(id)) + "/" + id, Metadata: map[string]string{"version": "1", "id": id}}
}

func register(t *testing.T, r registry.Registry, in registry.Instance, opts ...registry.RegisterOption) {
	t.Helper()
	if err := r.Register(ctxFor(t, 10*time.Second), in, opts...); err != nil {
		t.Fatalf("Register %s/%s: %v", in.Service, in.ID, err)
	}
}

func lookup(t *testing.T, r registry.Registry, svc string) []registry.Instance {
	t.Helper()
	got, err := r.Lookup(ctxFor(t, 10*time.Second), svc)
	if err != nil {
		t.Fatalf("Lookup %q: %v", svc, err)
	}
	return sorted(got)
}

func sorted(insts []registry.Instance) []registry.Instance {
	insts = slices.Clone(insts)
	slices.SortFunc(insts, func(a, b registry.Instance) int { return strings.Compare(a.ID, b.ID) })
	return insts
}

func equal(a, b registry.Instance) bool {
	return a.Service == b.Service && a.ID == b.ID && a.Addr == b.Addr && maps.Equal(a.Metadata, b.Metadata)
}

func equalSets(a, b []registry.Instance) bool {
	a, b = sorted(a), sorted(b)
	return slices.EqualFunc(a, b, equal)
}

func wantInstances(t *testing.T, got []registry.Instance, want ...registry.Instance) {
	t.Helper()
	if !equalSets(got, want) {
		t.Fatalf("instances:\n got %+v\nwant %+v", sorted(got), sorted(want))
	}
}

// watch starts a watch that ends with the test.
func watch(t *testing.T, r registry.Registry, svc string) <-chan registry.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := r.Watch(ctx, svc)
	if err != nil {
		t.Fatalf("Watch %q: %v", svc, err)
	}
	return ch
}

// next returns the next event of ch, failing after d.
func next(t *testing.T, ch <-chan registry.Event, d time.Duration) registry.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed, want an event")
		}
		return ev
	case <-time.After(d):
		t.Fatalf("no watch event within %v", d)
	}
	return registry.Event{}
}

// initial reads the n events a watch starts with, each of which must be
// Added, and returns their instances.
func initial(t *testing.T, ch <-chan registry.Event, n int) []registry.Instance {
	t.Helper()
	var got []registry.Instance
	for range n {
		ev := next(t, ch, 5*time.Second)
		if ev.Type != registry.Added {
			t.Fatalf("initial event %v, want added", ev.Type)
		}
		got = append(got, ev.Instance)
	}
	return got
}

// expectEvent fails unless the next event is typ for want.
func expectEvent(t *testing.T, ch <-chan registry.Event, typ registry.EventType, want registry.Instance, d time.Duration) {
	t.Helper()
	ev := next(t, ch, d)
	if ev.Type != typ || ev.Instance.Service != want.Service || ev.Instance.ID != want.ID {
		t.Fatalf("event %v %s/%s, want %v %s/%s", ev.Type, ev.Instance.Service, ev.Instance.ID, typ, want.Service, want.ID)
	}
	if typ == registry.Added && !equal(ev.Instance, want) {
		t.Fatalf("added %+v, want %+v", ev.Instance, want)
	}
}

// quiet fails if ch reports an event within d.
func quiet(t *testing.T, ch <-chan registry.Event, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("unexpected event %v %+v", ev.Type, ev.Instance)
		}
		t.Fatal("watch channel closed")
	case <-time.After(d):
	}
}

// waitClosed fails unless ch is closed within d (events before the close are
// skipped).
func waitClosed(t *testing.T, ch <-chan registry.Event, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("watch channel not closed within %v", d)
		}
	}
}

func (s *suite) testRegisterLookup(t *testing.T) {
	r := s.client(t)
	svc := service(t)
	a := inst(svc, "a")
	register(t, r, a)
	wantInstances(t, lookup(t, r, svc), a)
}

func (s *suite) testSeveralInstances(t *testing.T) {
	r := s.client(t)
	svc := service(t)
	var want []registry.Instance
	for _, id := range []string{"c", "a", "b.1", "b-2", "B_3"} {
		in := inst(svc, id)
		register(t, r, in)
		want = append(want, in)
	}
	wantInstances(t, lookup(t, r, svc), want...)
}

func (s *suite) testUpdate(t *testing.T) {
	r := s.client(t)
	svc := service(t)
	a := inst(svc, "a")
	register(t, r, a)
	ch := watch(t, r, svc)
	expectEvent(t, ch, registry.Added, a, 5*time.Second)

	a2 := a
	a2.Addr = "127.0.0.1:9999"
	a2.Metadata = map[string]string{"version": "2"}
	register(t, r, a2)
	wantInstances(t, lookup(t, r, svc), a2)
	expectEvent(t, ch, registry.Added, a2, 5*time.Second)

	// Registering the same thing again changes nothing a watcher must hear of.
	register(t, r, a2)
	quiet(t, ch, 300*time.Millisecond)
	wantInstances(t, lookup(t, r, svc), a2)
}

func (s *suite) testDeregister(t *testing.T) {
	r := s.client(t)
	svc := service(t)
	a, b := inst(svc, "a"), inst(svc, "b")
	register(t, r, a)
	register(t, r, b)
	if err := r.Deregister(ctxFor(t, 10*time.Second), a); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	wantInstances(t, lookup(t, r, svc), b)
	if err := r.Deregister(ctxFor(t, 10*time.Second), a); err != nil {
		t.Fatalf("second Deregister: %v, want nil", err)
	}
	if err := r.Deregister(ctxFor(t, 10*time.Second), b); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	if _, err := r.Lookup(ctxFor(t, 10*time.Second), svc); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Lookup after deregistering all: %v, want ErrNotFound", err)
	}
}

func (s *suite) testOtherClientSees(t *testing.T) {
	r1, r2 := s.client(t), s.client(t)
	svc := service(t)
	a := inst(svc, "a")
	register(t, r1, a)
	wantInstances(t, lookup(t, r2, svc), a)
	b := inst(svc, "b")
	register(t, r2, b)
	wantInstances(t, lookup(t, r1, svc), a, b)
	wantInstances(t, lookup(t, r2, svc), a, b)
}

// testNamesDoNotOverlap: a service whose name extends another's, and IDs
// with dots, never leak into each other's listing, whatever key scheme the
// backend uses.
func (s *suite) testNamesDoNotOverlap(t *testing.T) {
	r := s.client(t)
	base := service(t)
	a := inst(base, "x.y")      // base / x.y
	b := inst(base+".x", "y")   // base.x / y
	c := inst(base+"x", "y")    // basex / y
	d := inst(base+".x.y", "z") // base.x.y / z
	e := inst(base, "x")        // base / x
	f := inst(base+"-x", "y")   // base-x / y
	for _, in := range []registry.Instance{a, b, c, d, e, f} {
		register(t, r, in)
	}
	wantInstances(t, lookup(t, r, base), a, e)
	wantInstances(t, lookup(t, r, base+".x"), b)
	wantInstances(t, lookup(t, r, base+"x"), c)
	wantInstances(t, lookup(t, r, base+".x.y"), d)
	wantInstances(t, lookup(t, r, base+"-x"), f)
	if _, err := r.Lookup(ctxFor(t, 10*time.Second), base+".x.y.z"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Lookup %q: %v, want ErrNotFound", base+".x.y.z", err)
	}
}

func (s *suite) testLookupUnknown(t *testing.T) {
	r := s.client(t)
	_, err := r.Lookup(ctxFor(t, 10*time.Second), service(t))
	if !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Lookup of an unknown service: %v, want ErrNotFound", err)
	}
}

func (s *suite) testInvalid(t *testing.T) {
	r := s.client(t)
	svc := service(t)
	ctx := ctxFor(t, 10*time.Second)
	long := strings.Repeat("x", 129)
	bad := []registry.Instance{
		{Service: "", ID: "a", Addr: "h:1"},
		{Service: "has space", ID: "a", Addr: "h:1"},
		{Service: "a/b", ID: "a", Addr: "h:1"},
		{Service: "a*", ID: "a", Addr: "h:1"},
		{Service: "a>", ID: "a", Addr: "h:1"},
		{Service: long, ID: "a", Addr: "h:1"},
		{Service: "é", ID: "a", Addr: "h:1"},
		{Service: svc, ID: "", Addr: "h:1"},
		{Service: svc, ID: "a b", Addr: "h:1"},
		{Service: svc, ID: "a\nb", Addr: "h:1"},
		{Service: svc, ID: long, Addr: "h:1"},
		{Service: svc, ID: "a", Addr: ""},
	}
	for _, in := range bad {
		if err := r.Register(ctx, in); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("Register(%+v): %v, want ErrInvalid", in, err)
		}
	}
	if err := r.Register(ctx, inst(svc, "a"), registry.TTL(500*time.Millisecond)); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("Register with a 500ms TTL: %v, want ErrInvalid", err)
	}
	for _, name := range []string{"", "has space", "a/b", "a.*", "a.>", long} {
		if _, err := r.Lookup(ctx, name); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("Lookup(%q): %v, want ErrInvalid", name, err)
		}
		if _, err := r.Watch(ctx, name); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("Watch(%q): %v, want ErrInvalid", name, err)
		}
		if err := r.Deregister(ctx, registry.Instance{Service: name, ID: "a"}); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("Deregister(service %q): %v, want ErrInvalid", name, err)
		}
	}
	if _, err := r.Lookup(ctx, svc); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("after invalid registrations, Lookup: %v, want ErrNotFound (nothing stored)", err)
	}
}

// testHeartbeat: an instance with a short lease stays listed over several TTLs
// while its client lives, and the renewals are no news to a watcher.
func (s *suite) testHeartbeat(t *testing.T) {
	r1, r2 := s.client(t), s.client(t)
	svc := service(t)
	a := inst(svc, "a")
	register(t, r1, a, registry.TTL(s.f.LeaseTTL))
	ch := watch(t, r2, svc)
	expectEvent(t, ch, registry.Added, a, 5*time.Second)
	end := time.Now().Add(s.f.LeaseTTL * 7 / 2)
	for time.Now().Before(end) {
		wantInstances(t, lookup(t, r2, svc), a)
		select {
		case ev := <-ch:
			t.Fatalf("event %v %+v while the lease is renewed", ev.Type, ev.Instance)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// testExpiry: a client that crashes stops renewing; its instance disappears
// after the TTL, with a Removed event, while the other clients' stay.
func (s *suite) testExpiry(t *testing.T) {
	if s.f.Crash == nil {
		t.Skip("Features.Crash is nil: this implementation offers no way to simulate a crash")
	}
	victim, keeper, observer := s.open(t), s.client(t), s.client(t)
	svc := service(t)
	dead, alive := inst(svc, "dead"), inst(svc, "alive")
	register(t, victim, dead, registry.TTL(s.f.LeaseTTL))
	register(t, keeper, alive, registry.TTL(s.f.LeaseTTL))
	ch := watch(t, observer, svc)
	initial(t, ch, 2)
	start := time.Now()
	s.f.Crash(t, victim)
	t.Cleanup(func() { _ = victim.Close(context.Background()) })

	limit := s.f.LeaseTTL + s.f.ExpirySlack
	expectEvent(t, ch, registry.Removed, dead, limit)
	took := time.Since(start)
	got := lookup(t, observer, svc)
	wantInstances(t, got, alive)
	t.Logf("crashed instance removed %v after the crash (TTL %v)", took.Round(10*time.Millisecond), s.f.LeaseTTL)
	quiet(t, ch, s.f.LeaseTTL*3/2) // the live one is renewed, not expired
}

func (s *suite) testWatchInitial(t *testing.T) {
	r := s.client(t)
	svc := service(t)
	a, b := inst(svc, "a"), inst(svc, "b")
	register(t, r, a)
	register(t, r, b)
	ch := watch(t, r, svc)
	wantInstances(t, initial(t, ch, 2), a, b)
	quiet(t, ch, 300*time.Millisecond)
}

func (s *suite) testWatchEvents(t *testing.T) {
	r1, r2 := s.client(t), s.client(t)
	svc := service(t)
	other := inst(service(t), "x") // another service: never reported
	ch := watch(t, r2, svc)
	quiet(t, ch, 200*time.Millisecond)

	a, b := inst(svc, "a"), inst(svc, "b")
	register(t, r1, a)
	expectEvent(t, ch, registry.Added, a, 5*time.Second)
	register(t, r1, other)
	register(t, r1, b)
	expectEvent(t, ch, registry.Added, b, 5*time.Second)
	a2 := a
	a2.Addr = "10.0.0.1:1"
	register(t, r1, a2)
	expectEvent(t, ch, registry.Added, a2, 5*time.Second)
	if err := r1.Deregister(ctxFor(t, 10*time.Second), a); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ch, registry.Removed, a, 5*time.Second)
	quiet(t, ch, 300*time.Millisecond)
}

func (s *suite) testWatchEndsWithContext(t *testing.T) {
	r := s.client(t)
	svc := service(t)
	register(t, r, inst(svc, "a"))
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := r.Watch(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	next(t, ch, 5*time.Second)
	cancel()
	waitClosed(t, ch, 5*time.Second)
	// The registry still works after a watch ended.
	register(t, r, inst(svc, "b"))
	if got := lookup(t, r, svc); len(got) != 2 {
		t.Fatalf("lookup after a watch ended: %d instances, want 2", len(got))
	}
}

func (s *suite) testWatchEndsOnClose(t *testing.T) {
	r := s.client(t)
	svc := service(t)
	ch, err := r.Watch(context.Background(), svc)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitClosed(t, ch, 5*time.Second)
}

// testCloseDeregisters: Close removes the client's instances at once, long
// before their lease would run out.
func (s *suite) testCloseDeregisters(t *testing.T) {
	r1, r2 := s.client(t), s.client(t)
	svc := service(t)
	a, b := inst(svc, "a"), inst(svc, "b")
	register(t, r1, a, registry.TTL(time.Minute))
	register(t, r1, b, registry.TTL(time.Minute))
	keep := inst(svc, "keep")
	register(t, r2, keep, registry.TTL(time.Minute))
	ch := watch(t, r2, svc)
	for range 3 {
		next(t, ch, 5*time.Second)
	}
	if err := r1.Close(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r1.Close(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("second Close: %v, want nil", err)
	}
	wantInstances(t, lookup(t, r2, svc), keep)
	var removed []registry.Instance
	for range 2 {
		ev := next(t, ch, 5*time.Second)
		if ev.Type != registry.Removed {
			t.Fatalf("event %v, want removed", ev.Type)
		}
		removed = append(removed, registry.Instance{Service: ev.Instance.Service, ID: ev.Instance.ID})
	}
	wantInstances(t, removed, registry.Instance{Service: svc, ID: "a"}, registry.Instance{Service: svc, ID: "b"})
}

func (s *suite) testClosedRefuses(t *testing.T) {
	r := s.client(t)
	svc := service(t)
	if err := r.Close(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 10*time.Second)
	if err := r.Register(ctx, inst(svc, "a")); !errors.Is(err, registry.ErrClosed) {
		t.Errorf("Register after Close: %v, want ErrClosed", err)
	}
	if _, err := r.Lookup(ctx, svc); !errors.Is(err, registry.ErrClosed) {
		t.Errorf("Lookup after Close: %v, want ErrClosed", err)
	}
	if _, err := r.Watch(ctx, svc); !errors.Is(err, registry.ErrClosed) {
		t.Errorf("Watch after Close: %v, want ErrClosed", err)
	}
	if err := r.Deregister(ctx, inst(svc, "a")); !errors.Is(err, registry.ErrClosed) {
		t.Errorf("Deregister after Close: %v, want ErrClosed", err)
	}
}

// testMetadataCopied: the registry keeps its own copy of what it is given
// and hands out copies.
func (s *suite) testMetadataCopied(t *testing.T) {
	r := s.client(t)
	svc := service(t)
	a := inst(svc, "a")
	md := a.Metadata
	register(t, r, a)
	md["version"] = "changed after Register"
	got := lookup(t, r, svc)
	if got[0].Metadata["version"] != "1" {
		t.Fatalf("metadata changed by the caller after Register: %v", got[0].Metadata)
	}
	got[0].Metadata["version"] = "changed after Lookup"
	if again := lookup(t, r, svc); again[0].Metadata["version"] != "1" {
		t.Fatalf("metadata changed through a Lookup result: %v", again[0].Metadata)
	}
}

// testConcurrent: many goroutines register, update, deregister, look up and
// watch at once; the end state and a watcher's view of it agree.
func (s *suite) testConcurrent(t *testing.T) {
	r1, r2, obs := s.client(t), s.client(t), s.client(t)
	svc := service(t)
	ch := watch(t, obs, svc)

	// The watcher's view, built from events alone.
	var mu sync.Mutex
	view := map[string]registry.Instance{}
	viewDone := make(chan struct{})
	go func() {
		defer close(viewDone)
		for ev := range ch {
			mu.Lock()
			switch ev.Type {
			case registry.Added:
				view[ev.Instance.ID] = ev.Instance
			case registry.Removed:
				delete(view, ev.Instance.ID)
			}
			mu.Unlock()
		}
	}()

	const workers, each = 8, 6
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*4)
	var mwant sync.Mutex
	want := map[string]registry.Instance{}
	for w := range workers {
		r := r1
		if w%2 == 1 {
			r = r2
		}
		wg.Go(func() {
			ctx := context.Background()
			for i := range each {
				in := inst(svc, fmt.Sprintf("w%d-i%d", w, i))
				if err := r.Register(ctx, in); err != nil {
					errs <- err
					return
				}
				if _, err := r.Lookup(ctx, svc); err != nil {
					errs <- fmt.Errorf("lookup while registering: %w", err)
				}
				switch i % 3 {
				case 0: // keep as is
				case 1: // update
					in.Addr = "updated:" + in.ID
					if err := r.Register(ctx, in); err != nil {
						errs <- err
					}
				case 2: // remove
					if err := r.Deregister(ctx, in); err != nil {
						errs <- err
					}
					continue
				}
				mwant.Lock()
				want[in.ID] = in
				mwant.Unlock()
			}
		})
	}
	// Watches that come and go while the others work.
	for range 4 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			wch, err := obs.Watch(ctx, svc)
			if err != nil {
				errs <- err
				cancel()
				return
			}
			<-time.After(50 * time.Millisecond)
			cancel()
			for range wch { //nolint:revive // draining until closed
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	wantList := slices.Collect(maps.Values(want))
	wantInstances(t, lookup(t, obs, svc), wantList...)

	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := slices.Collect(maps.Values(view))
		mu.Unlock()
		if equalSets(got, wantList) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watcher's view:\n got %+v\nwant %+v", sorted(got), sorted(wantList))
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}
