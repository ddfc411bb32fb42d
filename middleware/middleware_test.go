package middleware_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/middleware"
	"github.com/herald-dev/herald/middleware/dedupetest"
)

func msg() *broker.Message {
	return &broker.Message{ID: broker.NewID(), Topic: "orders.created", Attempt: 1, Header: broker.Header{"k": "v"}, Body: []byte("body")}
}

func TestChainOrder(t *testing.T) {
	var got []string
	mark := func(name string) middleware.Middleware {
		return func(next broker.Handler) broker.Handler {
			return func(ctx context.Context, m *broker.Message) error {
				got = append(got, name)
				return next(ctx, m)
			}
		}
	}
	h := middleware.Chain(func(context.Context, *broker.Message) error { got = append(got, "handler"); return nil }, mark("a"), mark("b"))
	if err := h(context.Background(), msg()); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "a,b,handler" {
		t.Fatalf("order %v, want a,b,handler", got)
	}
}

func TestRecover(t *testing.T) {
	h := middleware.Recover()(func(context.Context, *broker.Message) error { panic("boom") })
	err := h(context.Background(), msg())
	if !errors.Is(err, broker.ErrPanic) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v, want ErrPanic with the value", err)
	}
}

func TestTimeout(t *testing.T) {
	h := middleware.Timeout(20 * time.Millisecond)(func(ctx context.Context, _ *broker.Message) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if err := h(context.Background(), msg()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

func TestRetry(t *testing.T) {
	transient := errors.New("transient")
	t.Run("succeeds on third call", func(t *testing.T) {
		calls := 0
		h := middleware.Retry{MaxRetries: 3}.Middleware(func(context.Context, *broker.Message) error {
			calls++
			if calls < 3 {
				return transient
			}
			return nil
		})
		if err := h(context.Background(), msg()); err != nil || calls != 3 {
			t.Fatalf("err %v after %d calls, want nil after 3", err, calls)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		calls := 0
		h := middleware.Retry{MaxRetries: 2, Backoff: broker.Backoff{Initial: time.Millisecond}}.Middleware(func(context.Context, *broker.Message) error {
			calls++
			return transient
		})
		if err := h(context.Background(), msg()); !errors.Is(err, transient) || calls != 3 {
			t.Fatalf("err %v after %d calls, want transient after 3", err, calls)
		}
	})
	t.Run("permanent not retried", func(t *testing.T) {
		calls := 0
		h := middleware.Retry{MaxRetries: 5}.Middleware(func(context.Context, *broker.Message) error {
			calls++
			return broker.Permanent(transient)
		})
		if err := h(context.Background(), msg()); !broker.IsPermanent(err) || calls != 1 {
			t.Fatalf("err %v after %d calls, want permanent after 1", err, calls)
		}
	})
	t.Run("ShouldRetry refuses", func(t *testing.T) {
		calls := 0
		h := middleware.Retry{MaxRetries: 5, ShouldRetry: func(error) bool { return false }}.Middleware(func(context.Context, *broker.Message) error {
			calls++
			return transient
		})
		if err := h(context.Background(), msg()); err == nil || calls != 1 {
			t.Fatalf("err %v after %d calls, want error after 1", err, calls)
		}
	})
	t.Run("stops when ctx is done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		h := middleware.Retry{MaxRetries: 100, Backoff: broker.Backoff{Initial: time.Hour}}.Middleware(func(context.Context, *broker.Message) error {
			calls++
			cancel()
			return transient
		})
		if err := h(ctx, msg()); !errors.Is(err, transient) || calls != 1 {
			t.Fatalf("err %v after %d calls, want transient after 1", err, calls)
		}
	})
}

type recorder struct {
	mu     sync.Mutex
	topics []string
	msgs   []*broker.Message
	err    error
}

func (r *recorder) Publish(_ context.Context, topic string, m *broker.Message, _ ...broker.PublishOption) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.topics = append(r.topics, topic)
	r.msgs = append(r.msgs, m.Clone())
	return nil
}

func TestDeadLetter(t *testing.T) {
	failing := func(context.Context, *broker.Message) error { return errors.New("smtp 451") }
	t.Run("before max attempts the error goes to the broker", func(t *testing.T) {
		rec := &recorder{}
		h := middleware.DeadLetter{Publisher: rec, MaxAttempts: 3}.Middleware(failing)
		m := msg()
		m.Attempt = 2
		if err := h(context.Background(), m); err == nil {
			t.Fatal("want the handler error")
		}
		if len(rec.msgs) != 0 {
			t.Fatalf("dead-lettered early: %v", rec.topics)
		}
	})
	t.Run("at max attempts it is dead-lettered and acked", func(t *testing.T) {
		rec := &recorder{}
		h := middleware.DeadLetter{Publisher: rec, MaxAttempts: 3, Queue: "email"}.Middleware(failing)
		m := msg()
		m.Attempt = 3
		if err := h(context.Background(), m); err != nil {
			t.Fatalf("err = %v, want nil (acked)", err)
		}
		if len(rec.msgs) != 1 || rec.topics[0] != "orders.created.dlq" {
			t.Fatalf("published %v", rec.topics)
		}
		d := rec.msgs[0]
		if d.ID != m.ID || string(d.Body) != "body" || d.Header.Get("k") != "v" ||
			d.Header.Get(broker.HeaderDeadLetterAttempts) != "3" || d.Header.Get(broker.HeaderDeadLetterTopic) != "orders.created" ||
			d.Header.Get(broker.HeaderDeadLetterQueue) != "email" || !strings.Contains(d.Header.Get(broker.HeaderDeadLetterReason), "smtp 451") {
			t.Fatalf("dead letter %+v", d)
		}
	})
	t.Run("permanent goes at once", func(t *testing.T) {
		rec := &recorder{}
		h := middleware.DeadLetter{Publisher: rec, Topic: "poison"}.Middleware(func(context.Context, *broker.Message) error {
			return broker.Permanent(errors.New("bad event"))
		})
		if err := h(context.Background(), msg()); err != nil || len(rec.topics) != 1 || rec.topics[0] != "poison" {
			t.Fatalf("err %v topics %v", err, rec.topics)
		}
	})
	t.Run("failed publish nacks", func(t *testing.T) {
		rec := &recorder{err: errors.New("broker down")}
		h := middleware.DeadLetter{Publisher: rec}.Middleware(func(context.Context, *broker.Message) error {
			return broker.Permanent(errors.New("bad event"))
		})
		err := h(context.Background(), msg())
		if err == nil || !strings.Contains(err.Error(), "broker down") || !strings.Contains(err.Error(), "bad event") {
			t.Fatalf("err = %v, want both errors", err)
		}
	})
}

// TestDedupeStores runs the store conformance suite on every store of this
// package: memory, and SQL on SQLite, MySQL and PostgreSQL.
func TestDedupeStores(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		dedupetest.Run(t, func(*testing.T) middleware.DedupeStore { return &middleware.MemoryDedupeStore{} })
	})
	for name, open := range sqlStores(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t) // one store for all: a migration per subtest is slow on a loaded server
			dedupetest.Run(t, func(*testing.T) middleware.DedupeStore { return s })
		})
	}
}

func TestCheckRetention(t *testing.T) {
	for d, ok := range map[time.Duration]bool{
		0: true, middleware.MinRetention: true, 30 * 24 * time.Hour: true,
		middleware.MinRetention - time.Nanosecond: false, time.Second: false, -time.Nanosecond: false, -time.Hour: false,
	} {
		if err := middleware.CheckRetention(d); (err == nil) != ok {
			t.Errorf("CheckRetention(%v) = %v, want ok %v", d, err, ok)
		}
	}
}
