package user

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/herald-dev/herald/internal/dbtest"
	"github.com/herald-dev/herald/outbox"
)

// TestStoreUniqueKeys drives the store past the service's pre-checks, as a
// lost race would: the unique keys themselves must refuse a second email
// (in any case) or id, with the right error, and no event row.
func TestStoreUniqueKeys(t *testing.T) {
	dbtest.Run(t, []string{Table, outbox.Table}, func(t *testing.T, url string) {
		ctx := context.Background()
		g := dbtest.Open(t, url)
		if err := Migrate(ctx, g); err != nil {
			t.Fatal(err)
		}
		s := newStore(g, Source)
		rec := func(id, email string) *record {
			return &record{ID: id, Name: "N", Email: email, EmailKey: emailKey(email), PasswordHash: "x", CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
		}
		if err := s.create(ctx, rec("u1", "Kim@example.com")); err != nil {
			t.Fatal(err)
		}
		if err := s.create(ctx, rec("u2", "KIM@example.com")); !errors.Is(err, errEmailTaken) {
			t.Fatalf("second email: %v, want errEmailTaken", err)
		}
		if err := s.create(ctx, rec("u1", "lee@example.com")); !errors.Is(err, errIDTaken) {
			t.Fatalf("second id: %v, want errIDTaken", err)
		}
		var users, events int64
		g.Table(Table).Count(&users)
		g.Table(outbox.Table).Count(&events)
		if users != 1 || events != 1 {
			t.Fatalf("%d users and %d outbox rows, want 1 and 1", users, events)
		}
		got, err := s.get(ctx, "email_key", emailKey("kim@EXAMPLE.com"))
		if err != nil || got.ID != "u1" || got.PasswordHash != "" {
			t.Fatalf("get = %+v, %v; want u1 without its hash", got, err)
		}
	})
}

func TestNormaliseEmail(t *testing.T) {
	for in, want := range map[string]string{
		"a@b":                  "a@b",
		" Ada@Example.COM ":    "Ada@example.com",
		"José@Exämple.com":     "José@exämple.com",
		"x+tag@sub.example.io": "x+tag@sub.example.io",
	} {
		var errs fieldErrors
		if got := normaliseEmail(&errs, in); got != want || len(errs) > 0 {
			t.Errorf("normaliseEmail(%q) = %q, %v; want %q", in, got, errs, want)
		}
	}
	if emailKey("Ada@example.com") != emailKey("ada@EXAMPLE.com") {
		t.Error("email keys differ by case")
	}
}
