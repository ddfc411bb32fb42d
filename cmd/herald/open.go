package main

import (
	"context"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/broker/nats"
)

// newBrokerMux returns the URL mux of every broker backend this binary links.
// It is the one place backends are assembled.
func newBrokerMux() *broker.URLMux {
	mux := new(broker.URLMux)
	mux.Register(mem.Scheme, mem.OpenURL)
	mux.Register(nats.Scheme, nats.OpenURL)
	return mux
}

// openBroker opens the broker at rawURL.
func openBroker(ctx context.Context, rawURL string) (broker.Broker, error) {
	return newBrokerMux().Open(ctx, rawURL)
}
