package brokertest

import (
	"strconv"
	"time"
)

// pollEvery is how often the wait helpers look at their condition.
const pollEvery = 2 * time.Millisecond

// waitFor polls cond until it holds, and fails the test when it still does
// not after timeout. what says what was awaited, for the failure message.
func (e *env) waitFor(timeout time.Duration, cond func() bool, what func() string) {
	e.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			e.Fatalf("timed out after %v waiting for %s", timeout, what())
		}
		<-tick.C
	}
}

// waitCount polls get until it returns at least want. It fails the test when
// the count stops growing for the suite's Timeout, so a slow backend has as
// long as it needs as long as it makes progress.
func (e *env) waitCount(get func() int, want int, what string) {
	e.Helper()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	last, since := get(), time.Now()
	for last < want {
		<-tick.C
		n := get()
		if n > last {
			last, since = n, time.Now()
			continue
		}
		if time.Since(since) > e.f.Timeout {
			e.Fatalf("%s: %d of %d after no progress for %v", what, n, want, e.f.Timeout)
		}
	}
}

// waitClosed waits for ch to be closed, failing the test after timeout.
func (e *env) waitClosed(ch <-chan struct{}, timeout time.Duration, what string) {
	e.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		e.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// stillOpen reports whether ch stays open for the settle time.
func (e *env) stillOpen(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return false
	case <-time.After(e.f.SettleTime):
		return true
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
