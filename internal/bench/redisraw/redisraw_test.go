package redisraw_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/herald-dev/herald/internal/bench/redisraw"
	"github.com/herald-dev/herald/internal/serverlock"
)

func TestRun(t *testing.T) {
	url := os.Getenv("HERALD_TEST_REDIS_URL")
	if url == "" {
		t.Skip("HERALD_TEST_REDIS_URL is not set: the baseline needs a Redis server (scripts/servers/start-redis.sh)")
	}
	serverlock.Use(t, "redis") // broker/redis's tests restart it
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Another package's test may be restarting the shared server: retry
	// for a while.
	var pub, cons float64
	var err error
	for deadline := time.Now().Add(time.Minute); ; {
		pub, cons, err = redisraw.Run(ctx, url, 5000, 256)
		if err == nil || time.Now().After(deadline) {
			break
		}
		t.Logf("retrying in a second: %v", err)
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if pub <= 0 || cons <= 0 {
		t.Fatalf("rates %v published/s, %v consumed/s; want both > 0", pub, cons)
	}
	t.Logf("raw go-redis: %.0f published/s, %.0f consumed+acked/s", pub, cons)
}
