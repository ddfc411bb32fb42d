package user_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/internal/dbtest"
	"github.com/herald-dev/herald/services/user"
)

func TestCreateRateLimit(t *testing.T) {
	var pw secrets
	e := start(t, dbtest.URL(t, dbtest.Engines()[0], tables...), func(c *user.Config) {
		c.CreateRate, c.CreateBurst = 1, 3 // 3 at once, then one a second; a wait of 2 s is allowed
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// 8 at once: 3 through the burst, 2 after waiting (≤ 2 s), the rest refused.
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		ok, limit int
		msg       string
	)
	startAt := time.Now()
	for i := range 8 {
		wg.Go(func() {
			_, err := create(ctx, e.client, "", "Rate", fmt.Sprintf("rate%d@example.com", i), pw.add("correct horse battery staple"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case connect.CodeOf(err) == connect.CodeResourceExhausted:
				limit++
				msg = err.Error()
			default:
				t.Errorf("create %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if ok < 3 || ok > 6 || ok+limit != 8 {
		t.Fatalf("%d created, %d refused by the rate limit; want 3 to 6 created and the rest refused", ok, limit)
	}
	if ok > 3 && time.Since(startAt) < 900*time.Millisecond {
		t.Errorf("%d created in %v: calls over the burst did not wait", ok, time.Since(startAt))
	}
	for _, want := range []string{"resource_exhausted", "too many registrations from 127.0.0.1", "1 per second per client address", "burst 3", "retry in"} {
		if !strings.Contains(msg, want) {
			t.Errorf("rate limit error %q does not say %q", msg, want)
		}
	}
	pw.checkAll(t, e)
}

func TestCreateRateLimitOff(t *testing.T) {
	var pw secrets
	e := start(t, dbtest.URL(t, dbtest.Engines()[0], tables...), func(c *user.Config) {
		c.CreateRate, c.CreateBurst = -1, 1 // off
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 10 {
		if _, err := create(ctx, e.client, "", "Free", fmt.Sprintf("free%d@example.com", i), pw.add("correct horse battery staple")); err != nil {
			t.Fatalf("create %d with the limit off: %v", i, err)
		}
	}
}

func TestCreateRateLimitOptions(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst int
		wait  time.Duration
		ok    bool
	}{
		{10, 20, time.Second, true},
		{0, 0, 0, true}, // off
		{-1, 1, 0, false},
		{1, 0, 0, false},
		{1, 1, -time.Second, false},
	} {
		_, err := user.NewService(dbtest.Open(t, "sqlite://:memory:"), user.WithCreateRateLimit(tc.rate, tc.burst, tc.wait))
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, broker.ErrInvalidOption)) {
			t.Errorf("WithCreateRateLimit(%g, %d, %v): %v", tc.rate, tc.burst, tc.wait, err)
		}
	}
}
