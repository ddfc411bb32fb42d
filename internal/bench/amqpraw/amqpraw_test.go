package amqpraw_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/herald-dev/herald/internal/bench/amqpraw"
	"github.com/herald-dev/herald/internal/serverlock"
)

func TestRun(t *testing.T) {
	url := os.Getenv("HERALD_TEST_AMQP_URL")
	if url == "" {
		t.Skip("HERALD_TEST_AMQP_URL is not set: the baseline needs a RabbitMQ server (scripts/servers/start-rabbitmq.sh)")
	}
	serverlock.Use(t, "rabbitmq") // broker/rabbitmq's tests restart it
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Another package's test may be restarting the shared server: retry
	// for a while.
	var pub, cons float64
	var err error
	for deadline := time.Now().Add(time.Minute); ; {
		pub, cons, err = amqpraw.Run(ctx, url, 5000, 256)
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
	t.Logf("raw amqp091-go: %.0f published/s, %.0f consumed+acked/s", pub, cons)
}
