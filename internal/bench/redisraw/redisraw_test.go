package redisraw_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/herald-dev/herald/internal/bench/redisraw"
)

func TestRun(t *testing.T) {
	url := os.Getenv("HERALD_TEST_REDIS_URL")
	if url == "" {
		t.Skip("HERALD_TEST_REDIS_URL is not set: the baseline needs a Redis server (scripts/servers/start-redis.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pub, cons, err := redisraw.Run(ctx, url, 5000, 256)
	if err != nil {
		t.Fatal(err)
	}
	if pub <= 0 || cons <= 0 {
		t.Fatalf("rates %v published/s, %v consumed/s; want both > 0", pub, cons)
	}
	t.Logf("raw go-redis: %.0f published/s, %.0f consumed+acked/s", pub, cons)
}
