package user_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/events"
	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/gen/herald/user/v1/userv1connect"
	"github.com/herald-dev/herald/internal/dbtest"
	"github.com/herald-dev/herald/internal/syncbuf"
	"github.com/herald-dev/herald/outbox"
	"github.com/herald-dev/herald/registry"
	"github.com/herald-dev/herald/services/user"
)

// tables are what the service creates, dropped before each server test.
var tables = []string{user.Table, outbox.Table}

// recorder is a broker that records every message it accepts, in front of
// a real in-process broker; publishes fail while down is set.
type recorder struct {
	*mem.Broker
	down atomic.Bool

	mu   sync.Mutex
	msgs []*broker.Message
}

func (r *recorder) Publish(ctx context.Context, topic string, m *broker.Message, opts ...broker.PublishOption) error {
	return r.PublishBatch(ctx, topic, []*broker.Message{m}, opts...)
}

func (r *recorder) PublishBatch(ctx context.Context, topic string, ms []*broker.Message, opts ...broker.PublishOption) error {
	if r.down.Load() {
		return fmt.Errorf("recorder: publish %q: broker down", topic)
	}
	if err := r.Broker.PublishBatch(ctx, topic, ms, opts...); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range ms {
		c := m.Clone()
		c.Topic = topic
		r.msgs = append(r.msgs, c)
	}
	return nil
}

func (r *recorder) messages() []*broker.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*broker.Message(nil), r.msgs...)
}

// env is a running user server with a client, its broker and its logs.
type env struct {
	srv    *user.Server
	base   string
	client userv1connect.UserServiceClient
	broker *recorder
	logs   *syncbuf.Buffer
	dbURL  string
}

type envOption func(*user.Config)

// start runs a user server on the database at dbURL, logging at debug
// level into a buffer that the test checks for secrets when it ends.
func start(t *testing.T, dbURL string, opts ...envOption) *env {
	t.Helper()
	e := &env{broker: &recorder{Broker: mem.New()}, logs: &syncbuf.Buffer{}, dbURL: dbURL}
	cfg := user.Config{
		DatabaseURL:  dbURL,
		BcryptCost:   4, // these tests are about messaging and validation, not hashing
		Broker:       e.broker,
		Logger:       slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RelayOptions: []outbox.Option{outbox.WithPollInterval(20 * time.Millisecond), outbox.WithBackoff(broker.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2})},
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := user.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	e.srv = srv
	e.base = "http://" + srv.Addr()
	e.client = userv1connect.NewUserServiceClient(http.DefaultClient, e.base)
	return e
}

func withRegistry(r registry.Registry) envOption {
	return func(c *user.Config) { c.Registry = r }
}

// secrets are checked for in everything a test saw.
type secrets struct {
	mu        sync.Mutex
	passwords []string
}

func (s *secrets) add(pw string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passwords = append(s.passwords, pw)
	return pw
}

// check fails t if text holds a password or anything like a bcrypt hash.
func (s *secrets) check(t *testing.T, what, text string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pw := range s.passwords {
		if len(pw) >= 8 && strings.Contains(text, pw) {
			t.Errorf("%s contains a password", what)
		}
	}
	for _, h := range []string{"$2a$", "$2b$", "$2y$", "password_hash", "PasswordHash"} {
		if strings.Contains(text, h) {
			t.Errorf("%s contains %q (a hash?): %.300s", what, h, text)
		}
	}
}

// checkAll checks the logs and every event published.
func (s *secrets) checkAll(t *testing.T, e *env) {
	t.Helper()
	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"rpc"`) || !strings.Contains(logs, `"level":"DEBUG"`) {
		t.Errorf("the debug log has no request lines, so checking it proves nothing: %.500s", logs)
	}
	s.check(t, "the log", logs)
	for _, m := range e.broker.messages() {
		s.check(t, "event "+m.ID, fmt.Sprintf("%v %s", m.Header, m.Body))
	}
}

func create(ctx context.Context, c userv1connect.UserServiceClient, id, name, email, pw string) (*userv1.User, error) {
	res, err := c.Create(ctx, connect.NewRequest(&userv1.CreateRequest{Id: id, Name: name, Email: email, Password: pw}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetUser(), nil
}

// eventsFor returns the user.registered events published for user id.
func eventsFor(t *testing.T, e *env, id string) []events.UserRegistered {
	t.Helper()
	var out []events.UserRegistered
	for _, m := range e.broker.messages() {
		if m.Topic != events.TopicUserRegistered {
			continue
		}
		ev, err := events.DecodeUserRegistered(m)
		if err != nil {
			t.Fatalf("event %s does not decode: %v", m.ID, err)
		}
		if ev.ID == id {
			out = append(out, ev)
		}
	}
	return out
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond) // polling, with a deadline
	}
}

// counts returns the rows in users and in the outbox.
func counts(t *testing.T, dbURL string) (users, pending int64) {
	t.Helper()
	g := dbtest.Open(t, dbURL)
	if err := g.Table(user.Table).Count(&users).Error; err != nil {
		t.Fatal(err)
	}
	if err := g.Table(outbox.Table).Count(&pending).Error; err != nil {
		t.Fatal(err)
	}
	return users, pending
}
