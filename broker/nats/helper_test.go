package nats_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/broker/nats/natsserver"
)

// startServer starts an embedded server on a random port with its data in a
// test directory, stopped at the end of the test.
func startServer(t testing.TB) *natsserver.Server {
	t.Helper()
	srv, err := natsserver.Start(natsserver.WithDataDir(t.TempDir()))
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// open connects a broker to srv, closed at the end of the test.
func open(t testing.TB, srv *natsserver.Server, opts ...nats.Option) *nats.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := nats.New(ctx, srv.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("nats.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

// ctxT returns a context that ends with the test or after d.
func ctxT(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// collector gathers deliveries on a channel.
type collector chan *broker.Message

func (c collector) handler(ctx context.Context, m *broker.Message) error {
	select {
	case c <- m.Clone():
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// next waits for the next delivery or fails the test.
func (c collector) next(t testing.TB, d time.Duration) *broker.Message {
	t.Helper()
	select {
	case m := <-c:
		return m
	case <-time.After(d):
		t.Fatalf("no delivery within %v", d)
		return nil
	}
}

// none checks that nothing is delivered within d.
func (c collector) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-c:
		t.Fatalf("unexpected delivery %s (attempt %d)", m.ID, m.Attempt)
	case <-time.After(d):
	}
}

func subscribe(t testing.TB, b broker.Broker, topic string, h broker.Handler, opts ...broker.SubscribeOption) broker.Subscription {
	t.Helper()
	sub, err := b.Subscribe(ctxT(t, 10*time.Second), topic, h, opts...)
	if err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sub.Unsubscribe(ctx)
	})
	return sub
}

func publish(t testing.TB, b broker.Broker, topic string, m *broker.Message) {
	t.Helper()
	if err := b.Publish(ctxT(t, 10*time.Second), topic, m); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

// testLogger logs to t at debug level when -v is given.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
