package user_test

import (
	"context"
	"testing"
	"time"

	"github.com/herald-dev/herald/internal/dbtest"
	"github.com/herald-dev/herald/services/user"
)

// TestNoRelay: a server with Config.NoRelay commits registrations with
// their events into the outbox and publishes none of them, not even when it
// shuts down; a server with the relay on the same database publishes them.
func TestNoRelay(t *testing.T) {
	url := dbtest.URL(t, dbtest.Engines()[0])
	quiet := start(t, url, func(c *user.Config) { c.NoRelay = true })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := create(ctx, quiet.client, "", "Held", "held@example.com", "password-held")
	if err != nil {
		t.Fatal(err)
	}
	if err := quiet.srv.Shutdown(ctx); err != nil { // no final outbox pass either
		t.Fatal(err)
	}
	if users, pending := counts(t, url); users != 1 || pending != 1 {
		t.Fatalf("with the relay off: %d users and %d outbox rows, want 1 and 1", users, pending)
	}
	if n := len(quiet.broker.messages()); n != 0 {
		t.Fatalf("%d events published with the relay off, want 0", n)
	}
	relay := start(t, url)
	eventually(t, 10*time.Second, "the held event published by the relay", func() bool { return len(eventsFor(t, relay, u.GetId())) == 1 })
	eventually(t, 10*time.Second, "the outbox emptied", func() bool { _, pending := counts(t, url); return pending == 0 })
}
