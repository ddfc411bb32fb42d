package main

import (
	"context"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/gcppubsub"
	httpbroker "github.com/herald-dev/herald/broker/http"
	"github.com/herald-dev/herald/broker/kafka"
	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/broker/rabbitmq"
	"github.com/herald-dev/herald/broker/redis"
	"github.com/herald-dev/herald/broker/sqs"
)

// defaultSpool is the HTTP broker's spool when its URL names none. Two
// processes cannot share a spool: give each its own with spool=.
const defaultSpool = ".herald/spool"

// newBrokerMux returns the URL mux of every broker backend this binary links.
// It is the one place backends are assembled.
func newBrokerMux() *broker.URLMux {
	mux := new(broker.URLMux)
	mux.Register(mem.Scheme, mem.OpenURL)
	mux.Register(nats.Scheme, nats.OpenURL)
	mux.Register(rabbitmq.Scheme, rabbitmq.OpenURL)
	mux.Register(rabbitmq.SchemeTLS, rabbitmq.OpenURL)
	mux.Register(redis.Scheme, redis.OpenURL)
	mux.Register(redis.SchemeTLS, redis.OpenURL)
	mux.Register(kafka.Scheme, kafka.OpenURL)
	mux.Register(gcppubsub.Scheme, gcppubsub.OpenURL)
	mux.Register(sqs.Scheme, sqs.OpenURL)
	httpOpen := httpbroker.OpenURLWith(openRegistry, httpbroker.WithSpool(defaultSpool))
	mux.Register(httpbroker.Scheme, httpOpen)
	mux.Register(httpbroker.SchemeHTTPS, httpOpen)
	return mux
}

// openBroker opens the broker at rawURL.
func openBroker(ctx context.Context, rawURL string) (broker.Broker, error) {
	return newBrokerMux().Open(ctx, rawURL)
}
