package mem_test

import (
	"context"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker/brokertest"
	"github.com/herald-dev/herald/broker/mem"
)

func TestDeadLetterBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b := mem.New()
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	brokertest.CheckDeadLetterBrowser(ctx, t, b)
}
