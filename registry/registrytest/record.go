package registrytest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/herald-dev/herald/registry"
)

// The behaviours of [registry.Recorder], run on registries that implement
// it (the others skip them, saying so).

// recorder returns r's Recorder, or skips the test.
func recorder(t *testing.T, r registry.Registry) registry.Recorder {
	t.Helper()
	rec, ok := r.(registry.Recorder)
	if !ok {
		t.Skipf("%T does not implement registry.Recorder", r)
	}
	return rec
}

// record records in through r, and deregisters it through janitor when the
// test ends: records outlive their clients, and a shared server outlives the
// test.
func record(t *testing.T, r registry.Registry, janitor registry.Registry, in registry.Instance) {
	t.Helper()
	if err := recorder(t, r).Record(ctxFor(t, 10*time.Second), in); err != nil {
		t.Fatalf("Record %s/%s: %v", in.Service, in.ID, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := janitor.Deregister(ctx, in); err != nil {
			t.Errorf("Deregister the record %s/%s: %v", in.Service, in.ID, err)
		}
	})
}

// testRecordOutlivesClose: a record stays listed after its client's Close
// (which removes the client's registrations), for the other clients and for
// clients opened later, until another client deregisters it.
func (s *suite) testRecordOutlivesClose(t *testing.T) {
	janitor := s.client(t)
	recorder(t, janitor)
	r1, r2 := s.client(t), s.client(t)
	svc := service(t)
	rec, reg := inst(svc, "rec"), inst(svc, "reg")
	record(t, r1, janitor, rec)
	register(t, r1, reg)
	ch := watch(t, r2, svc)
	wantInstances(t, initial(t, ch, 2), rec, reg)

	if err := r1.Close(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	expectEvent(t, ch, registry.Removed, reg, 5*time.Second)
	quiet(t, ch, 300*time.Millisecond)
	wantInstances(t, lookup(t, r2, svc), rec)
	wantInstances(t, lookup(t, s.client(t), svc), rec)

	if err := r2.Deregister(ctxFor(t, 10*time.Second), rec); err != nil {
		t.Fatalf("Deregister the record: %v", err)
	}
	expectEvent(t, ch, registry.Removed, rec, 5*time.Second)
	if _, err := r2.Lookup(ctxFor(t, 10*time.Second), svc); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Lookup after deregistering the record: %v, want ErrNotFound", err)
	}
}

// testRecordOutlivesCrash: a crashed client's registrations expire with
// their lease; its records stay.
func (s *suite) testRecordOutlivesCrash(t *testing.T) {
	if s.f.Crash == nil {
		t.Skip("Features.Crash is nil: this implementation offers no way to simulate a crash")
	}
	janitor, observer := s.client(t), s.client(t)
	recorder(t, janitor)
	victim := s.open(t)
	t.Cleanup(func() { _ = victim.Close(context.Background()) })
	svc := service(t)
	rec, reg := inst(svc, "rec"), inst(svc, "reg")
	record(t, victim, janitor, rec)
	register(t, victim, reg, registry.TTL(s.f.LeaseTTL))
	ch := watch(t, observer, svc)
	initial(t, ch, 2)
	s.f.Crash(t, victim)
	expectEvent(t, ch, registry.Removed, reg, s.f.LeaseTTL+s.f.ExpirySlack)
	quiet(t, ch, s.f.LeaseTTL+s.f.ExpirySlack) // the record has no lease to run out
	wantInstances(t, lookup(t, observer, svc), rec)
}

// testRecordReplacesRegistration: recording an instance the client
// registered turns the registration into a record: no lease runs out, and
// Close leaves it.
func (s *suite) testRecordReplacesRegistration(t *testing.T) {
	janitor := s.client(t)
	recorder(t, janitor)
	r1, r2 := s.client(t), s.client(t)
	svc := service(t)
	a := inst(svc, "a")
	register(t, r1, a, registry.TTL(s.f.LeaseTTL))
	ch := watch(t, r2, svc)
	expectEvent(t, ch, registry.Added, a, 5*time.Second)
	a2 := a
	a2.Metadata = map[string]string{"version": "2"}
	record(t, r1, janitor, a2)
	expectEvent(t, ch, registry.Added, a2, 5*time.Second)
	if err := r1.Close(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	quiet(t, ch, s.f.LeaseTTL+s.f.ExpirySlack) // neither Close nor the old lease removes it
	wantInstances(t, lookup(t, r2, svc), a2)
}

// testRecordUpdate: recording the same record again is no news; a changed
// one is reported as Added; a record and a registration list side by side.
func (s *suite) testRecordUpdate(t *testing.T) {
	r := s.client(t)
	recorder(t, r)
	svc := service(t)
	a, b := inst(svc, "a"), inst(svc, "b")
	record(t, r, r, a)
	register(t, r, b)
	ch := watch(t, r, svc)
	for range 2 {
		next(t, ch, 5*time.Second)
	}
	record(t, r, r, a)
	quiet(t, ch, 300*time.Millisecond)
	a2 := a
	a2.Addr = "10.0.0.1:1"
	record(t, r, r, a2)
	expectEvent(t, ch, registry.Added, a2, 5*time.Second)
	wantInstances(t, lookup(t, r, svc), a2, b)
}

// testRecordRefuses: bad records are refused with ErrInvalid and store
// nothing; a closed client refuses with ErrClosed.
func (s *suite) testRecordRefuses(t *testing.T) {
	r := s.client(t)
	rec := recorder(t, r)
	svc := service(t)
	ctx := ctxFor(t, 10*time.Second)
	for _, in := range []registry.Instance{
		{Service: "", ID: "a", Addr: "h:1"},
		{Service: "a/b", ID: "a", Addr: "h:1"},
		{Service: svc, ID: "a b", Addr: "h:1"},
		{Service: svc, ID: "a", Addr: ""},
	} {
		if err := rec.Record(ctx, in); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("Record(%+v): %v, want ErrInvalid", in, err)
		}
	}
	if _, err := r.Lookup(ctx, svc); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("after invalid records, Lookup: %v, want ErrNotFound (nothing stored)", err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rec.Record(ctx, inst(svc, "a")); !errors.Is(err, registry.ErrClosed) {
		t.Errorf("Record after Close: %v, want ErrClosed", err)
	}
}
