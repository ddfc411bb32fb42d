package main

import (
	"context"
	"net/url"
	"os"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/internal/bench"
	"github.com/herald-dev/herald/internal/bench/natsraw"
)

// benchTarget returns the URL to measure. "nats://" with no host starts an
// embedded server for the run, so that Herald and the raw baseline share it.
func benchTarget(_ context.Context, backend string) (string, func(), error) {
	u, err := url.Parse(backend)
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
	if err != nil || u.Scheme != "nats" {
		return nil, nil
	}
	pub, cons, err := natsraw.Run(ctx, target, cfg.Messages, cfg.Size)
	if err != nil {
		return nil, err
	}
	consCfg := cfg
	consCfg.Progress = nil
	herald, err := bench.Consume(ctx, b, consCfg)
	if err != nil {
		return nil, err
	}
	r := &baseline{BaselinePublishPerSec: pub, BaselineConsumePerSec: cons, HeraldConsumePerSec: herald}
	return r, nil
}
