package nats

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-dev/herald/internal/jsreplicas"
)

// streamConfig is the configuration of the stream of topic: one subject,
// Limits retention with the broker's max age, its storage, its duplicate
// window and its replicas.
func (b *Broker) streamConfig(topic string) jetstream.StreamConfig {
	dup := b.cfg.dupWindow
	if b.cfg.maxAge > 0 {
		dup = min(dup, b.cfg.maxAge)
	}
	return jetstream.StreamConfig{
		Name:        streamName(b.cfg.prefix, topic),
		Description: "Herald topic " + topic,
		Subjects:    []string{subject(b.cfg.prefix, topic)},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     b.cfg.storage,
		MaxAge:      b.cfg.maxAge,
		Duplicates:  dup,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		Replicas:    b.cfg.replicas,
	}
}

// ensureStream makes sure the stream of topic exists, creating it, or
// updating its max age and duplicate window when they differ from the
// broker's and raising its replicas when it has fewer than the broker's
// (never lowering them: see [jsreplicas.ScaleUp]). Streams found are
// remembered; [Broker.forgetStream] undoes that when a publish finds the
// stream gone.
func (b *Broker) ensureStream(ctx context.Context, topic string) error {
	if _, ok := b.streams.Load(topic); ok {
		return nil
	}
	b.streamMu.Lock()
	defer b.streamMu.Unlock()
	if _, ok := b.streams.Load(topic); ok {
		return nil
	}
	want := b.streamConfig(topic)
	s, err := b.js.Stream(ctx, want.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = b.js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil // created by another broker in between
		}
	case err == nil:
		have := s.CachedInfo().Config
		if have.Storage != want.Storage {
			b.cfg.logger.Info("nats: stream exists with another storage type; keeping it",
				"stream", want.Name, "storage", have.Storage.String())
		}
		if have.MaxAge != want.MaxAge || have.Duplicates != want.Duplicates {
			have.MaxAge, have.Duplicates = want.MaxAge, want.Duplicates
			if _, err = b.js.UpdateStream(ctx, have); err != nil {
				break
			}
		}
		jsreplicas.ScaleUp(ctx, b.js, have, want.Replicas, b.cfg.logger.With("stream", have.Name), "nats", "stream")
	}
	if err != nil {
		return err
	}
	b.streams.Store(topic, struct{}{})
	return nil
}

// forgetStream drops what the broker knows of topic's stream, so the next
// ensureStream checks the server again (the stream was deleted, or lived in
// the memory of a server that restarted).
func (b *Broker) forgetStream(topic string) { b.streams.Delete(topic) }
