// Package jsreplicas holds the one rule by which Herald changes the
// replicas of a JetStream stream it finds: up to what it asks, never down.
// The NATS broker's topic streams and the NATS registry's bucket follow it.
package jsreplicas

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
)

// ScaleUp raises the replicas of the stream configured as have to want
// when it has fewer, and never lowers them: a client started without asking
// for replicas must not scale a replicated stream down. A scale-up the
// cluster refuses (too few servers up, or a single server) is logged and
// the stream used as it is: it still works, and the next client to find it
// tries again. prefix and noun name the caller and the stream in the logs
// ("nats", "stream"; "registry", "bucket"); log carries its name.
func ScaleUp(ctx context.Context, js jetstream.JetStream, have jetstream.StreamConfig, want int, log *slog.Logger, prefix, noun string) {
	log = log.With("replicas", have.Replicas, "asked", want)
	switch {
	case have.Replicas > want:
		log.Info(prefix + ": " + noun + " exists with more replicas than asked; keeping them")
	case have.Replicas < want:
		have.Replicas = want
		if _, err := js.UpdateStream(ctx, have); err != nil {
			log.Warn(prefix+": could not scale the "+noun+" up; using it as it is", "err", err)
			return
		}
		log.Info(prefix + ": " + noun + " scaled up")
	}
}
