// Package dedupetest is the conformance suite of [middleware.DedupeStore]:
// every store Herald ships (memory, SQL, NATS JetStream KV, Redis) runs it,
// and so can a third party's.
//
//	func TestConformance(t *testing.T) {
//		dedupetest.Run(t, func(t *testing.T) middleware.DedupeStore { return newStore(t) })
//	}
//
// open is called once per subtest and may return the same shared backend
// every time (a database server, a bucket): every subtest uses keys of its
// own, so records left by earlier runs or other subtests never matter.
//
// # What it proves
//
//   - Claim, Complete, Release: a claimed key is Busy for everyone else,
//     a completed key is Done for everyone (its owner included), a released
//     key can be claimed again.
//   - Owners: only the holder of a claim completes or releases it; a
//     Release never undoes a Complete.
//   - Leases: a claim whose TTL ran out is taken over, and its first
//     holder's late Complete then counts for nothing; a holder that
//     completes after its lease ran out, while nobody took the key over,
//     still records it Done (its work happened).
//   - Done records are kept: they outlive the lease of their claim.
//   - Concurrency: of many claimers of one key at once, exactly one wins;
//     the others see Busy (or Done once it completed).
//   - Keys: any non-empty UTF-8 string up to 150 bytes is a key of its own
//     (dots, slashes, spaces, '=', upper case, non-ASCII), distinct from
//     every other.
//   - The [middleware.Dedupe] middleware over the store: a duplicate does
//     not run the handler, a failure lets the redelivery run it, concurrent
//     deliveries of one message run it once.
//
// Leases may be coarse: a store may round a TTL up (the NATS store to whole
// seconds), so the expiry checks wait up to [ExpiryWait] for a short lease
// to run out.
package dedupetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/middleware"
)

// ExpiryWait is how long the suite waits for a claim of a millisecond's TTL
// to be taken over before it fails.
const ExpiryWait = 15 * time.Second

// Run runs the suite on the stores open returns.
func Run(t *testing.T, open func(t *testing.T) middleware.DedupeStore) {
	t.Helper()
	tests := []struct {
		name string
		f    func(t *testing.T, s middleware.DedupeStore)
	}{
		{"ClaimCompleteRelease", claimCompleteRelease},
		{"Owners", owners},
		{"ExpiredClaimTakenOver", expiredClaimTakenOver},
		{"CompleteAfterLapsedLease", completeAfterLapsedLease},
		{"ConcurrentClaims", concurrentClaims},
		{"Keys", keys},
		{"MiddlewareDropsDuplicates", middlewareDropsDuplicates},
		{"MiddlewareFailureReleases", middlewareFailureReleases},
		{"MiddlewareConcurrentDeliveries", middlewareConcurrentDeliveries},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, open(t)) })
	}
}

// key returns a key no other subtest or run uses: the stores on servers
// outlive a test run.
func key(name string) string { return name + "-" + broker.NewID() }

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// claim claims k and fails the test unless the result is want.
func claim(t *testing.T, s middleware.DedupeStore, k, owner string, ttl time.Duration, want middleware.ClaimResult) {
	t.Helper()
	got, err := s.Claim(ctxFor(t), k, owner, ttl)
	if err != nil {
		t.Fatalf("Claim(%q, %q): %v", k, owner, err)
	}
	if got != want {
		t.Fatalf("Claim(%q, %q) = %v, want %v", k, owner, got, want)
	}
}

func complete(t *testing.T, s middleware.DedupeStore, k, owner string) {
	t.Helper()
	if err := s.Complete(ctxFor(t), k, owner); err != nil {
		t.Fatalf("Complete(%q, %q): %v", k, owner, err)
	}
}

func release(t *testing.T, s middleware.DedupeStore, k, owner string) {
	t.Helper()
	if err := s.Release(ctxFor(t), k, owner); err != nil {
		t.Fatalf("Release(%q, %q): %v", k, owner, err)
	}
}

func claimCompleteRelease(t *testing.T, s middleware.DedupeStore) {
	k := key("ccr")
	claim(t, s, k, "a", time.Minute, middleware.Claimed)
	claim(t, s, k, "b", time.Minute, middleware.Busy)
	claim(t, s, k, "a", time.Minute, middleware.Busy) // a claim is not re-entrant
	release(t, s, k, "a")
	claim(t, s, k, "b", time.Minute, middleware.Claimed)
	complete(t, s, k, "b")
	claim(t, s, k, "c", time.Minute, middleware.Done)
	claim(t, s, k, "b", time.Minute, middleware.Done)
	complete(t, s, k, "b") // completing twice changes nothing
	claim(t, s, k, "d", time.Minute, middleware.Done)
}

func owners(t *testing.T, s middleware.DedupeStore) {
	k := key("owners")
	claim(t, s, k, "a", time.Minute, middleware.Claimed)
	release(t, s, k, "b") // not b's claim
	claim(t, s, k, "c", time.Minute, middleware.Busy)
	complete(t, s, k, "b") // not b's to complete
	claim(t, s, k, "c", time.Minute, middleware.Busy)
	release(t, s, k, "a")
	claim(t, s, k, "c", time.Minute, middleware.Claimed) // b's Complete did not count

	k2 := key("owners-done")
	claim(t, s, k2, "a", time.Minute, middleware.Claimed)
	complete(t, s, k2, "a")
	release(t, s, k2, "a") // a Release after Complete does not undo it
	claim(t, s, k2, "b", time.Minute, middleware.Done)

	release(t, s, key("owners-none"), "a") // nothing to release: no error
}

// waitClaimed claims k for owner until the claim succeeds, for up to
// [ExpiryWait]: the previous holder's lease must run out first.
func waitClaimed(t *testing.T, s middleware.DedupeStore, k, owner string) {
	t.Helper()
	deadline := time.Now().Add(ExpiryWait)
	for {
		r, err := s.Claim(ctxFor(t), k, owner, time.Minute)
		if err != nil {
			t.Fatalf("Claim(%q, %q): %v", k, owner, err)
		}
		if r == middleware.Claimed {
			return
		}
		if r != middleware.Busy {
			t.Fatalf("Claim(%q, %q) = %v while the old lease runs out, want busy or claimed", k, owner, r)
		}
		if time.Now().After(deadline) {
			t.Fatalf("a claim with a TTL of 1ms was still held after %v", ExpiryWait)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

func expiredClaimTakenOver(t *testing.T, s middleware.DedupeStore) {
	// kept is claimed first and completed at once: by the time k's lease
	// (the same TTL, taken later) has run out, kept's has too, and its
	// done record must not have gone with it.
	kept, k := key("kept"), key("expired")
	claim(t, s, kept, "a", time.Millisecond, middleware.Claimed)
	complete(t, s, kept, "a")
	claim(t, s, k, "dead", time.Millisecond, middleware.Claimed)
	waitClaimed(t, s, k, "new")
	claim(t, s, kept, "b", time.Minute, middleware.Done)

	// The dead holder comes back: its Complete and Release count for nothing.
	complete(t, s, k, "dead")
	claim(t, s, k, "third", time.Minute, middleware.Busy)
	release(t, s, k, "dead")
	claim(t, s, k, "third", time.Minute, middleware.Busy)
	complete(t, s, k, "new")
	claim(t, s, k, "fourth", time.Minute, middleware.Done)
}

func completeAfterLapsedLease(t *testing.T, s middleware.DedupeStore) {
	// The holder's handler outlived its lease and nobody took the key
	// over: its work happened, so its Complete must still record it.
	k, probe := key("lapsed"), key("lapsed-probe")
	claim(t, s, k, "slow", time.Millisecond, middleware.Claimed)
	claim(t, s, probe, "x", time.Millisecond, middleware.Claimed)
	waitClaimed(t, s, probe, "y") // k's lease, taken first, ran out too
	complete(t, s, k, "slow")
	claim(t, s, k, "other", time.Minute, middleware.Done)
}

func concurrentClaims(t *testing.T, s middleware.DedupeStore) {
	const claimers = 8
	for round := range 3 {
		k := key(fmt.Sprintf("race%d", round))
		var wg sync.WaitGroup
		results := make([]middleware.ClaimResult, claimers)
		errs := make([]error, claimers)
		start := make(chan struct{})
		for i := range claimers {
			wg.Go(func() {
				<-start
				results[i], errs[i] = s.Claim(context.Background(), k, fmt.Sprintf("o%d", i), time.Minute)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, r := range results {
			if errs[i] != nil {
				t.Fatalf("claimer %d: %v", i, errs[i])
			}
			switch r {
			case middleware.Claimed:
				if winner >= 0 {
					t.Fatalf("claimers %d and %d both claimed %q", winner, i, k)
				}
				winner = i
			case middleware.Busy:
			default:
				t.Fatalf("claimer %d: %v, want claimed or busy", i, r)
			}
		}
		if winner < 0 {
			t.Fatalf("no claimer of %q won: %v", k, results)
		}
		// The winner completes while others claim: each sees busy or done.
		var done atomic.Int32
		for i := range claimers {
			if i == winner {
				wg.Go(func() {
					if err := s.Complete(context.Background(), k, fmt.Sprintf("o%d", i)); err != nil {
						errs[i] = err
					}
				})
				continue
			}
			wg.Go(func() {
				r, err := s.Claim(context.Background(), k, fmt.Sprintf("late%d", i), time.Minute)
				switch {
				case err != nil:
					errs[i] = err
				case r == middleware.Done:
					done.Add(1)
				case r != middleware.Busy:
					errs[i] = fmt.Errorf("late claim: %v, want busy or done", r)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		claim(t, s, k, "after", time.Minute, middleware.Done)
	}
}

func keys(t *testing.T, s middleware.DedupeStore) {
	base := key("keys")
	forms := []string{
		base, base + ".x", base + "/x", base + " x", base + " ", "=" + base, base + "=", "." + base, base + "..x",
		base + "*", base + ">", base + ":x", base + "ü", strings.ToUpper(base), strings.Repeat("k", 150-len(base)) + base,
	}
	for i, k := range forms {
		claim(t, s, k, "a", time.Minute, middleware.Claimed)
		if i%2 == 0 {
			complete(t, s, k, "a")
		}
	}
	for i, k := range forms {
		want := middleware.Busy
		if i%2 == 0 {
			want = middleware.Done
		}
		claim(t, s, k, "b", time.Minute, want)
	}
	claim(t, s, base[:len(base)-1], "a", time.Minute, middleware.Claimed) // a prefix is a key of its own
}

func msg() *broker.Message {
	return &broker.Message{ID: broker.NewID(), Topic: "orders.created", Attempt: 1, Body: []byte("body")}
}

func middlewareDropsDuplicates(t *testing.T, s middleware.DedupeStore) {
	var calls atomic.Int32
	h := middleware.Dedupe{Store: s}.Middleware(func(context.Context, *broker.Message) error {
		calls.Add(1)
		return nil
	})
	m := msg()
	for i := range 3 {
		m.Attempt = i + 1
		if err := h(ctxFor(t), m); err != nil {
			t.Fatal(err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("handler ran %d times for one ID, want 1", calls.Load())
	}
	if err := h(ctxFor(t), msg()); err != nil || calls.Load() != 2 {
		t.Fatalf("a new ID: err %v, calls %d, want 2", err, calls.Load())
	}
}

func middlewareFailureReleases(t *testing.T, s middleware.DedupeStore) {
	var fail atomic.Bool
	fail.Store(true)
	var calls atomic.Int32
	h := middleware.Dedupe{Store: s}.Middleware(func(context.Context, *broker.Message) error {
		calls.Add(1)
		if fail.Load() {
			return errors.New("smtp down")
		}
		return nil
	})
	m := msg()
	if err := h(ctxFor(t), m); err == nil {
		t.Fatal("want the handler's error")
	}
	fail.Store(false)
	for range 2 {
		if err := h(ctxFor(t), m); err != nil {
			t.Fatal(err)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("handler ran %d times, want 2 (failed, then succeeded, then dropped)", calls.Load())
	}
}

func middlewareConcurrentDeliveries(t *testing.T, s middleware.DedupeStore) {
	var calls atomic.Int32
	started, release := make(chan struct{}, 1), make(chan struct{})
	h := middleware.Dedupe{Store: s}.Middleware(func(context.Context, *broker.Message) error {
		calls.Add(1)
		started <- struct{}{}
		<-release
		return nil
	})
	m := msg()
	first := make(chan error, 1)
	go func() { first <- h(context.Background(), m.Clone()) }()
	select { // the first delivery holds the claim once its handler runs
	case <-started:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("first delivery never ran")
	}
	var wg sync.WaitGroup
	var busy atomic.Int32
	for range 8 {
		wg.Go(func() {
			if err := h(context.Background(), m.Clone()); errors.Is(err, middleware.ErrInFlight) {
				busy.Add(1)
			}
		})
	}
	wg.Wait()
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 || busy.Load() != 8 {
		t.Fatalf("calls %d busy %d, want 1 and 8", calls.Load(), busy.Load())
	}
	if err := h(context.Background(), m); err != nil || calls.Load() != 1 {
		t.Fatalf("after completion: err %v calls %d", err, calls.Load())
	}
}
