package natsraw_test

import (
	"context"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/internal/bench/natsraw"
)

func TestRun(t *testing.T) {
	srv, err := natsserver.Start(natsserver.WithDataDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pub, cons, err := natsraw.Run(ctx, srv.ClientURL(), 5000, 256)
	if err != nil {
		t.Fatal(err)
	}
	if pub <= 0 || cons <= 0 {
		t.Errorf("rates %v and %v, want both > 0", pub, cons)
	}
	t.Logf("raw JetStream: publish %.0f msgs/s, consume %.0f msgs/s", pub, cons)

	if _, _, err := natsraw.Run(ctx, srv.ClientURL(), 0, 256); err == nil {
		t.Error("Run with 0 messages: no error")
	}
}
