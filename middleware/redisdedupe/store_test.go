package redisdedupe_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/internal/serverlock"
	"github.com/herald-dev/herald/middleware"
	"github.com/herald-dev/herald/middleware/dedupetest"
	"github.com/herald-dev/herald/middleware/redisdedupe"
)

const envURL = "HERALD_TEST_REDIS_URL"

// client returns a client of the test server of its own, closed when the
// test ends, or skips the test.
func client(t *testing.T) *goredis.Client {
	t.Helper()
	u := os.Getenv(envURL)
	if u == "" {
		t.Skipf("%s is not set: these tests need a Redis server (scripts/servers/start-redis.sh starts one; then %s=redis://127.0.0.1:6379/0)", envURL, envURL)
	}
	serverlock.Use(t, "redis") // broker/redis's tests restart it
	opts, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatalf("%s: %v", envURL, err)
	}
	c := goredis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// prefix returns a key prefix no other test or run uses, whose keys are
// deleted when the test ends.
func prefix(t *testing.T, c *goredis.Client) string {
	t.Helper()
	p := "t" + broker.NewID()[24:] + ":dedupe:"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, p+"*", 100).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return p
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestConformance runs the store suite, every subtest on a client of its
// own and one shared prefix, as replicas would.
func TestConformance(t *testing.T) {
	p := prefix(t, client(t))
	dedupetest.Run(t, func(t *testing.T) middleware.DedupeStore {
		s, err := redisdedupe.New(client(t), redisdedupe.WithPrefix(p))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestExpiries: a claim expires after its lease, a done record after the
// retention, or never with retention 0 — on the server's clock.
func TestExpiries(t *testing.T) {
	c := client(t)
	p := prefix(t, c)
	for _, tc := range []struct {
		retention time.Duration
		want      time.Duration // -1: no expiry
	}{
		{redisdedupe.DefaultRetention, redisdedupe.DefaultRetention},
		{time.Hour, time.Hour},
		{0, -1},
	} {
		s, err := redisdedupe.New(c, redisdedupe.WithPrefix(p), redisdedupe.WithRetention(tc.retention))
		if err != nil {
			t.Fatal(err)
		}
		k := broker.NewID()
		if r, err := s.Claim(ctx(t), k, "a", 90*time.Second); err != nil || r != middleware.Claimed {
			t.Fatalf("claim: %v %v", r, err)
		}
		if d := c.PTTL(ctx(t), p+k).Val(); d <= 80*time.Second || d > 90*time.Second {
			t.Fatalf("claim expires in %v, want 90s", d)
		}
		if err := s.Complete(ctx(t), k, "a"); err != nil {
			t.Fatal(err)
		}
		if v := c.Get(ctx(t), p+k).Val(); v != "done:a" {
			t.Fatalf("value %q, want done:a", v)
		}
		d := c.PTTL(ctx(t), p+k).Val()
		if tc.want < 0 && d != -1 || tc.want > 0 && (d <= tc.want-10*time.Second || d > tc.want) {
			t.Fatalf("retention %v: done record expires in %v", tc.retention, d)
		}
	}
}

func TestForeignValue(t *testing.T) {
	c := client(t)
	p := prefix(t, c)
	s, err := redisdedupe.New(c, redisdedupe.WithPrefix(p))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx(t), p+"k", "something else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx(t), "k", "a", time.Minute); err == nil || !strings.Contains(err.Error(), "something else than a dedupe record") {
		t.Fatalf("claim of a foreign value: %v", err)
	}
}

func TestInvalid(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer c.Close()
	for name, opt := range map[string]redisdedupe.Option{
		"empty prefix":    redisdedupe.WithPrefix(""),
		"short retention": redisdedupe.WithRetention(time.Second),
		"negative":        redisdedupe.WithRetention(-time.Hour),
	} {
		if _, err := redisdedupe.New(c, opt); !errors.Is(err, broker.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := redisdedupe.New(nil); !errors.Is(err, broker.ErrInvalidOption) {
		t.Errorf("nil client: %v", err)
	}
	s, err := redisdedupe.New(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(context.Background(), "", "a", time.Second); err == nil {
		t.Error("empty key: no error")
	}
	if err := s.Complete(context.Background(), "k", ""); err == nil {
		t.Error("empty owner: no error")
	}
	if err := s.Release(context.Background(), "", "a"); err == nil {
		t.Error("empty key on release: no error")
	}
}
