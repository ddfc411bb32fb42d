package main

import (
	"context"
	"net/url"
	"os"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/internal/bench"
	"github.com/herald-dev/herald/internal/bench/amqpraw"
	"github.com/herald-dev/herald/internal/bench/natsraw"
	"github.com/herald-dev/herald/internal/bench/redisraw"
	"github.com/herald-dev/herald/internal/system"
)

// rawBaseline returns the engine's own client run as the baseline of
// scheme, or nil: it publishes messages of size bytes and then consumes and
// acknowledges them, timing each phase.
func rawBaseline(scheme string) func(ctx context.Context, url string, messages, size int) (pub, cons float64, err error) {
	switch scheme {
	case "nats":
		return natsraw.Run
	case "amqp", "amqps":
		return amqpraw.Run
	case "redis", "rediss":
		return redisraw.Run
	}
	return nil
}

// benchTarget returns the URL to measure. "nats://" with no host starts an
// embedded server for the run, so that Herald and the raw baseline share it;
// "http://" gets a spool and a secret of the run's own.
func benchTarget(_ context.Context, backend string) (string, func(), error) {
	u, err := url.Parse(backend)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		// A spool and, unless one is given, a secret of the run's own.
		dir, err := os.MkdirTemp("", "herald-bench-http-")
		if err != nil {
			return "", nil, err
		}
		target, err := system.WithHTTPSecret(backend, dir)
		return target, func() { os.RemoveAll(dir) }, err
	}
	if err != nil || u.Scheme != "nats" || u.Host != "" {
		return backend, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "herald-bench-nats-")
	if err != nil {
		return "", nil, err
	}
	srv, err := natsserver.Start(natsserver.WithPort(-1), natsserver.WithDataDir(dir))
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return srv.ClientURL(), func() { srv.Shutdown(); os.RemoveAll(dir) }, nil
}

// runBaseline measures the engine's raw client in this process, against the
// same server, and Herald's consume-only rate the same way, for the ratios.
// Backends without a baseline return nil.
func runBaseline(ctx context.Context, b broker.Broker, target string, cfg bench.Config) (*baseline, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, nil
	}
	raw := rawBaseline(u.Scheme)
	if raw == nil {
		return nil, nil
	}
	pub, cons, err := raw(ctx, target, cfg.Messages, cfg.Size)
	if err != nil {
		return nil, err
	}
	consCfg := cfg
	consCfg.Progress = nil
	heraldPub, heraldCons, err := bench.Consume(ctx, b, consCfg)
	if err != nil {
		return nil, err
	}
	r := &baseline{BaselinePublishPerSec: pub, BaselineConsumePerSec: cons, HeraldPublishPerSec: heraldPub, HeraldConsumePerSec: heraldCons}
	return r, nil
}
