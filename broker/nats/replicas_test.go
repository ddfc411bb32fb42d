package nats_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/broker/nats/natsserver/natsservertest"
	"github.com/herald-dev/herald/internal/syncbuf"
)

// openURL opens rawURL with OpenURL, closed at the end of the test.
func openURL(t *testing.T, rawURL string) *nats.Broker {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := nats.OpenURL(ctxT(t, 30*time.Second), u)
	if err != nil {
		t.Fatalf("OpenURL(%s): %v", rawURL, err)
	}
	t.Cleanup(func() { _ = b.Close(ctxT(t, 10*time.Second)) })
	return b.(*nats.Broker)
}

// jsOf returns b's JetStream.
func jsOf(t *testing.T, b *nats.Broker) jetstream.JetStream {
	t.Helper()
	var js jetstream.JetStream
	if !b.As(&js) {
		t.Fatal("As(*jetstream.JetStream) = false")
	}
	return js
}

// waitStreamPeers waits until stream has want replicas configured and
// want-1 followers besides its leader.
func waitStreamPeers(t *testing.T, js jetstream.JetStream, stream string, want int) *jetstream.StreamInfo {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	var last string // what the last look saw, for the failure
	for {
		// Each look gets a few seconds: an API request the cluster drops
		// while it settles would otherwise hold the whole wait.
		look, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := js.Stream(look, stream)
		cancel()
		if err == nil {
			info := s.CachedInfo()
			if c := info.Cluster; info.Config.Replicas == want && c != nil && c.Leader != "" && len(c.Replicas) == want-1 {
				return info
			}
			last = fmt.Sprintf("replicas %d, cluster %+v", info.Config.Replicas, info.Cluster)
		} else if ctx.Err() == nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %s: want %d replicas: %v; last seen: %s", stream, want, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond): // polling while the stream's peers catch up
		}
	}
}

// waitConsumerPeers waits until consumer of stream runs on want servers.
func waitConsumerPeers(t *testing.T, js jetstream.JetStream, stream, consumer string, want int) *jetstream.ConsumerInfo {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	for {
		look, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := js.Consumer(look, stream, consumer)
		cancel()
		if err == nil {
			info := c.CachedInfo()
			if cl := info.Cluster; cl != nil && cl.Leader != "" && len(cl.Replicas) == want-1 {
				return info
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("consumer %s on %s: want %d replicas: %v", consumer, stream, want, errors.Join(ctx.Err(), err))
		case <-time.After(50 * time.Millisecond): // polling while the consumer's peers catch up
		}
	}
}

// TestReplicas opens a broker with replicas=3 on a three-node cluster
// through a URL that lists the three servers: the topic's stream, its
// dead-letter topic's stream, a queue group's consumer and a broadcast
// subscriber's consumer all have three replicas.
func TestReplicas(t *testing.T) {
	nodes := natsservertest.StartCluster(t, 3)
	b := openURL(t, natsservertest.URL(nodes...)+"?replicas=3")
	if b.Replicas() != 3 {
		t.Errorf("Replicas() = %d, want 3", b.Replicas())
	}
	js := jsOf(t, b)

	poison := func(context.Context, *broker.Message) error { return broker.Permanent(errors.New("poison")) }
	subscribe(t, b, "pay", poison, broker.Queue("ledger"))
	got := make(collector, 1)
	subscribe(t, b, "pay", got.handler)
	publish(t, b, "pay", &broker.Message{ID: "p1"})
	if m := got.next(t, wait); m.ID != "p1" {
		t.Fatalf("broadcast got %s", m.ID)
	}

	waitStreamPeers(t, js, "herald~pay", 3)
	waitConsumerPeers(t, js, "herald~pay", "ledger", 3)
	bc := broadcastConsumer(t, js, "herald~pay")
	if info := waitConsumerPeers(t, js, "herald~pay", bc, 3); info.Config.Replicas != 3 {
		t.Errorf("broadcast consumer Replicas %d, want 3", info.Config.Replicas)
	}
	// The poison message went to the dead-letter topic, whose stream the
	// dead-letter publish created.
	waitStreamPeers(t, js, "herald~pay~dlq", 3)
}

// broadcastConsumer returns the name of the one consumer of stream that
// has no durable name.
func broadcastConsumer(t *testing.T, js jetstream.JetStream, stream string) string {
	t.Helper()
	s, err := js.Stream(ctxT(t, 10*time.Second), stream)
	if err != nil {
		t.Fatal(err)
	}
	names := s.ConsumerNames(ctxT(t, 10*time.Second))
	var found []string
	for n := range names.Name() {
		if n != "ledger" {
			found = append(found, n)
		}
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 {
		t.Fatalf("consumers other than ledger: %q, want one", found)
	}
	return found[0]
}

// TestReplicasOfExistingStream: a broker asking for more replicas than a
// stream has scales it up (its queue group's consumer follows); one asking
// for fewer keeps them and says so.
func TestReplicasOfExistingStream(t *testing.T) {
	nodes := natsservertest.StartCluster(t, 3)
	servers := natsservertest.URL(nodes...)
	one := openURL(t, servers) // R1, the default
	subscribe(t, one, "orders", func(context.Context, *broker.Message) error { return nil }, broker.Queue("billing"))
	publish(t, one, "orders", &broker.Message{ID: "o1"})
	js := jsOf(t, one)
	if info := waitStreamPeers(t, js, "herald~orders", 1); info.Config.Replicas != 1 {
		t.Fatalf("stream created with %d replicas, want 1", info.Config.Replicas)
	}

	three := openURL(t, servers+"?replicas=3")
	publish(t, three, "orders", &broker.Message{ID: "o2"})
	waitStreamPeers(t, js, "herald~orders", 3)
	waitConsumerPeers(t, js, "herald~orders", "billing", 3)

	var logs syncbuf.Buffer
	back, err := nats.New(ctxT(t, 10*time.Second), servers, nats.WithLogger(logs.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = back.Close(ctxT(t, 10*time.Second)) })
	publish(t, back, "orders", &broker.Message{ID: "o3"})
	if info := waitStreamPeers(t, js, "herald~orders", 3); info.State.Msgs != 3 {
		t.Errorf("stream holds %d messages, want 3", info.State.Msgs)
	}
	if !strings.Contains(logs.String(), "more replicas than asked") {
		t.Errorf("no log of the replicas kept:\n%s", logs.String())
	}
}

// TestReplicasOnSingleServer: a single server refuses a replicated stream,
// and the publish says why at once instead of retrying.
func TestReplicasOnSingleServer(t *testing.T) {
	srv := startServer(t)
	b := openURL(t, srv.ClientURL()+"?replicas=3")
	ctx := ctxT(t, 10*time.Second)
	start := time.Now()
	err := b.Publish(ctx, "x", &broker.Message{})
	if err == nil || !strings.Contains(err.Error(), "replicas") {
		t.Fatalf("Publish with replicas=3 on a single server: %v, want the server's refusal", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusal took %v", d)
	}
}

// TestReplicasScaleUpRefused: a stream the server cannot scale up (a
// single server) is used as it is, with a warning, rather than refusing
// the publish.
func TestReplicasScaleUpRefused(t *testing.T) {
	srv := startServer(t)
	publish(t, open(t, srv), "kept", &broker.Message{ID: "k1"})
	var logs syncbuf.Buffer
	b := open(t, srv, nats.WithReplicas(3), nats.WithLogger(logs.Logger()))
	publish(t, b, "kept", &broker.Message{ID: "k2"})
	if !strings.Contains(logs.String(), "could not scale the stream up") {
		t.Errorf("no warning of the refused scale-up:\n%s", logs.String())
	}
	s, err := jsOf(t, b).Stream(ctxT(t, 10*time.Second), "herald~kept")
	if err != nil {
		t.Fatal(err)
	}
	if info := s.CachedInfo(); info.Config.Replicas != 1 || info.State.Msgs != 2 {
		t.Errorf("stream has %d replicas and %d messages, want 1 and 2", info.Config.Replicas, info.State.Msgs)
	}
}

func TestOpenURLReplicasAndServers(t *testing.T) {
	ctx := ctxT(t, wait)
	for _, tc := range []struct {
		raw  string
		want error
	}{
		{"nats://?replicas=3", broker.ErrBadURL},
		{"nats://h:1?replicas=three", broker.ErrBadURL},
		{"nats://h:1?replicas=0", broker.ErrInvalidOption},
		{"nats://h:1?replicas=6", broker.ErrInvalidOption},
		{"nats://a:1,,b:2?replicas=3", broker.ErrBadURL},
		{"nats://a:1,b:0", broker.ErrBadURL},
		{"nats://a:1/x", broker.ErrBadURL},
	} {
		u, err := url.Parse(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nats.OpenURL(ctx, u); !errors.Is(err, tc.want) {
			t.Errorf("OpenURL(%s) = %v, want %v", tc.raw, err, tc.want)
		}
	}
	// replicas=1 is the embedded server's own.
	b := openURL(t, "nats://?replicas=1")
	if b.Replicas() != 1 {
		t.Errorf("Replicas() = %d, want 1", b.Replicas())
	}
}
