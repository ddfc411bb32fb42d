package nats_test

import (
	"context"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker/brokertest"
)

func TestDeadLetterBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b := open(t, startServer(t))
	brokertest.CheckDeadLetterBrowser(ctx, t, b)
}
