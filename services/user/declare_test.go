package user_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/events"
	"github.com/herald-dev/herald/internal/dbtest"
	"github.com/herald-dev/herald/internal/syncbuf"
	"github.com/herald-dev/herald/services/user"
)

func TestParseGroup(t *testing.T) {
	good := map[string]user.Group{
		"user.registered:email": {Topic: "user.registered", Queue: "email"},
		"a:b":                   {Topic: "a", Queue: "b"},
		"orders.eu-1:audit_2":   {Topic: "orders.eu-1", Queue: "audit_2"},
	}
	for in, want := range good {
		g, err := user.ParseGroup(in)
		if err != nil || g != want || g.String() != in {
			t.Errorf("ParseGroup(%q) = %+v, %v; want %+v and String() the input", in, g, err, want)
		}
	}
	bad := map[string]error{
		"":                           broker.ErrInvalidOption,
		"user.registered":            broker.ErrInvalidOption,
		":email":                     broker.ErrBadTopic,
		"user.registered:":           broker.ErrBadTopic,
		"user.registered:a.b":        broker.ErrBadTopic,
		"user registered:email":      broker.ErrBadTopic,
		"user.registered:email:x":    broker.ErrBadTopic,
		"user..registered:email":     broker.ErrBadTopic,
		"user.registered:em ail":     broker.ErrBadTopic,
		"user.registered,x:email":    broker.ErrBadTopic,
		"user.registered:\u00e9mail": broker.ErrBadTopic,
	}
	for in, want := range bad {
		if _, err := user.ParseGroup(in); !errors.Is(err, want) {
			t.Errorf("ParseGroup(%q): %v, want an error wrapping %v", in, err, want)
		}
	}
}

// FuzzParseGroup: ParseGroup accepts exactly the names the brokers accept,
// and what it accepts prints back as its input.
func FuzzParseGroup(f *testing.F) {
	for _, s := range []string{"user.registered:email", "a:b", "", ":", "a:", ":b", "a:b:c", "a.b:c.d", "x\x00:y", "a:b,c:d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := user.ParseGroup(s)
		if err != nil {
			if !errors.Is(err, broker.ErrInvalidOption) && !errors.Is(err, broker.ErrBadTopic) {
				t.Fatalf("ParseGroup(%q): %v wraps neither ErrInvalidOption nor ErrBadTopic", s, err)
			}
			return
		}
		if verr := broker.ValidateGroup(g.Topic, g.Queue); verr != nil {
			t.Fatalf("ParseGroup(%q) = %+v, which ValidateGroup refuses: %v", s, g, verr)
		}
		if g.String() != s {
			t.Fatalf("ParseGroup(%q).String() = %q", s, g.String())
		}
	})
}

func TestNewServerRefusesBadDeclareGroups(t *testing.T) {
	_, err := user.NewServer(user.Config{Broker: mem.New(), DeclareGroups: []user.Group{{Topic: "user.registered", Queue: "a.b"}}})
	if !errors.Is(err, broker.ErrInvalidOption) || !errors.Is(err, broker.ErrBadTopic) {
		t.Fatalf("NewServer with a bad group: %v, want ErrInvalidOption and ErrBadTopic", err)
	}
}

// receive subscribes to topic in queue group q of b and returns the first
// message, failing after a while.
func receive(t *testing.T, b broker.Broker, topic, q string) *broker.Message {
	t.Helper()
	got := make(chan *broker.Message, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := b.Subscribe(ctx, topic, func(_ context.Context, m *broker.Message) error {
		got <- m.Clone()
		return nil
	}, broker.Queue(q))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe(context.Background()) })
	select {
	case m := <-got:
		return m
	case <-ctx.Done():
		t.Fatalf("nothing delivered to group %q on %s", q, topic)
		return nil
	}
}

// Start declares the email service's group by default, and the groups of
// Config.DeclareGroups when set: an event published before a group's first
// member subscribes is kept for it (mem keeps messages only for groups that
// exist).
func TestDeclareGroupsAtStart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		groups []user.Group
		queue  string
	}{
		{"default", nil, events.QueueEmail},
		{"configured", []user.Group{{Topic: events.TopicUserRegistered, Queue: "audit"}}, "audit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, dbtest.URL(t, dbtest.Engines()[0]), func(c *user.Config) { c.DeclareGroups = tc.groups })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			u, err := create(ctx, e.client, "", "Early", "early@example.com", "password-early")
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "the event published", func() bool { return len(eventsFor(t, e, u.GetId())) == 1 })
			m := receive(t, e.broker.Broker, events.TopicUserRegistered, tc.queue)
			ev, err := events.DecodeUserRegistered(m)
			if err != nil || ev.ID != u.GetId() {
				t.Fatalf("group %q got %+v, %v; want the event of user %s", tc.queue, ev, err, u.GetId())
			}
		})
	}
}

// plain hides the capabilities of the broker it holds: it is a
// broker.Broker and nothing more.
type plain struct{ broker.Broker }

// A broker that cannot declare groups gets a warning, and the service
// starts and publishes as before.
func TestDeclareGroupsUnsupported(t *testing.T) {
	b := mem.New()
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	var logs syncbuf.Buffer
	srv, err := user.NewServer(user.Config{
		DatabaseURL: dbtest.URL(t, dbtest.Engines()[0]), BcryptCost: 4, Broker: plain{b},
		Logger: logs.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("Start on a broker without DeclareGroup: %v", err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	if s := logs.String(); !strings.Contains(s, "level=WARN") || !strings.Contains(s, "cannot declare queue groups") || !strings.Contains(s, "user.registered:email") {
		t.Errorf("no warning naming the groups not declared; logs:\n%s", s)
	}
}

// Any other failure to declare fails Start, naming the group; with
// NoDeclareGroups nothing is declared.
func TestDeclareGroupsFailureFailsStart(t *testing.T) {
	url := dbtest.URL(t, dbtest.Engines()[0])
	closed := mem.New()
	if err := closed.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := user.NewServer(user.Config{DatabaseURL: url, BcryptCost: 4, Broker: closed})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Start(ctx)
	if err == nil {
		_ = srv.Shutdown(ctx)
		t.Fatal("Start succeeded although the broker cannot declare the email service's group")
	}
	if !errors.Is(err, broker.ErrClosed) || !strings.Contains(err.Error(), "user.registered:email") {
		t.Errorf("Start: %v, want an error naming the group and wrapping the broker's", err)
	}

	srv, err = user.NewServer(user.Config{DatabaseURL: url, BcryptCost: 4, Broker: closed, NoDeclareGroups: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("Start with NoDeclareGroups: %v", err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Logf("Shutdown (the broker is closed): %v", err)
	}
}
