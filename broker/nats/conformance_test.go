package nats_test

import (
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/brokertest"
	"github.com/herald-dev/herald/broker/nats"
)

// TestConformance runs the broker contract's suite against an embedded
// server, each client on its own connection, and restarts the server on the
// same port and data directory for the Restart behaviour.
func TestConformance(t *testing.T) {
	srv := startServer(t)
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		ctx := ctxT(t, 10*time.Second)
		b, err := nats.New(ctx, srv.ClientURL(), nats.WithLogger(testLogger(t)))
		if err != nil {
			t.Fatalf("nats.New: %v", err)
		}
		return b
	}, brokertest.Features{
		Persistent:          true,
		OrderedPerPublisher: true,
		Restart: func(t *testing.T) {
			if err := srv.Restart(); err != nil {
				t.Fatalf("restart the NATS server: %v", err)
			}
		},
	})
}
