package nats_test

import (
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/nats-io/nats.go/jetstream"
)

// deleteConsumers deletes every consumer of stream, reporting whether there
// was one.
func deleteConsumers(t *testing.T, b broker.Broker, stream string) bool {
	t.Helper()
	var js jetstream.JetStream
	if !broker.As(b, &js) {
		t.Fatal("As(*jetstream.JetStream) = false")
	}
	ctx := ctxT(t, 10*time.Second)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	deleted := false
	names := s.ConsumerNames(ctx)
	for name := range names.Name() {
		if err := s.DeleteConsumer(ctx, name); err != nil {
			t.Fatal(err)
		}
		deleted = true
	}
	return deleted
}

func streamExists(t *testing.T, b broker.Broker, stream string) bool {
	t.Helper()
	var js jetstream.JetStream
	if !broker.As(b, &js) {
		t.Fatal("As(*jetstream.JetStream) = false")
	}
	_, err := js.Stream(ctxT(t, 10*time.Second), stream)
	return err == nil
}
