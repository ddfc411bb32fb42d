package middleware_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/middleware"
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

// dedupeStores runs f on every store implementation that can run here.
func dedupeStores(t *testing.T, f func(t *testing.T, s middleware.DedupeStore)) {
	t.Run("memory", func(t *testing.T) { f(t, &middleware.MemoryDedupeStore{}) })
	for name, open := range sqlStores(t) {
		t.Run(name, func(t *testing.T) { f(t, open(t)) })
	}
}

func TestDedupeDropsDuplicates(t *testing.T) {
	dedupeStores(t, func(t *testing.T, s middleware.DedupeStore) {
		var calls atomic.Int32
		h := middleware.Dedupe{Store: s}.Middleware(func(context.Context, *broker.Message) error {
			calls.Add(1)
			return nil
		})
		m := msg()
		for i := range 3 {
			m.Attempt = i + 1
			if err := h(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
		if calls.Load() != 1 {
			t.Fatalf("handler ran %d times for one ID, want 1", calls.Load())
		}
		if err := h(context.Background(), msg()); err != nil || calls.Load() != 2 {
			t.Fatalf("a new ID: err %v, calls %d, want 2", err, calls.Load())
		}
	})
}

func TestDedupeFailureReleases(t *testing.T) {
	dedupeStores(t, func(t *testing.T, s middleware.DedupeStore) {
		fail := true
		calls := 0
		h := middleware.Dedupe{Store: s}.Middleware(func(context.Context, *broker.Message) error {
			calls++
			if fail {
				return errors.New("smtp down")
			}
			return nil
		})
		m := msg()
		if err := h(context.Background(), m); err == nil {
			t.Fatal("want the handler's error")
		}
		fail = false
		if err := h(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if err := h(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if calls != 2 {
			t.Fatalf("handler ran %d times, want 2 (failed, then succeeded, then dropped)", calls)
		}
	})
}

func TestDedupeConcurrentDeliveries(t *testing.T) {
	dedupeStores(t, func(t *testing.T, s middleware.DedupeStore) {
		var calls atomic.Int32
		started, release := make(chan struct{}, 1), make(chan struct{})
		h := middleware.Dedupe{Store: s}.Middleware(func(context.Context, *broker.Message) error {
			calls.Add(1)
			started <- struct{}{}
			<-release
			return nil
		})
		m := msg()
		first := make(chan error, 1)
		go func() { first <- h(context.Background(), m.Clone()) }()
		select { // the first delivery holds the claim once its handler runs
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("first delivery never ran")
		}
		var wg sync.WaitGroup
		var busy atomic.Int32
		for range 8 {
			wg.Go(func() {
				if err := h(context.Background(), m.Clone()); errors.Is(err, middleware.ErrInFlight) {
					busy.Add(1)
				}
			})
		}
		wg.Wait()
		close(release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 1 || busy.Load() != 8 {
			t.Fatalf("calls %d busy %d, want 1 and 8", calls.Load(), busy.Load())
		}
		if err := h(context.Background(), m); err != nil || calls.Load() != 1 {
			t.Fatalf("after completion: err %v calls %d", err, calls.Load())
		}
	})
}

func TestDedupeExpiredClaimIsTakenOver(t *testing.T) {
	dedupeStores(t, func(t *testing.T, s middleware.DedupeStore) {
		ctx := context.Background()
		k1 := "k1-" + broker.NewID() // the SQL servers outlive a test run
		if r, err := s.Claim(ctx, k1, "dead-owner", time.Millisecond); err != nil || r != middleware.Claimed {
			t.Fatalf("claim: %v %v", r, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			r, err := s.Claim(ctx, k1, "new-owner", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if r == middleware.Claimed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("expired claim never taken over: %v", r)
			}
			time.Sleep(5 * time.Millisecond)
		}
		// The dead owner's late completion must not count.
		if err := s.Complete(ctx, k1, "dead-owner"); err != nil {
			t.Fatal(err)
		}
		if r, _ := s.Claim(ctx, k1, "third", time.Minute); r != middleware.Busy {
			t.Fatalf("claim after stale complete: %v, want busy", r)
		}
		if err := s.Complete(ctx, k1, "new-owner"); err != nil {
			t.Fatal(err)
		}
		if r, _ := s.Claim(ctx, k1, "fourth", time.Minute); r != middleware.Done {
			t.Fatalf("claim after complete: %v, want done", r)
		}
	})
}
