package user

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

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

// TestHasherBound: with every slot taken, a hash waits (and gives up with
// its context); once a slot frees, it runs.
func TestHasherBound(t *testing.T) {
	h := newHasher(4, 2)
	if cap(h.sem) != 2 {
		t.Fatalf("slots = %d, want 2", cap(h.sem))
	}
	h.sem <- struct{}{}
	h.sem <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.hash(ctx, "password-1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hash with no free slot = %v, want DeadlineExceeded", err)
	}
	<-h.sem
	hash, err := h.hash(context.Background(), "password-1")
	if err != nil || bcrypt.CompareHashAndPassword(hash, []byte("password-1")) != nil {
		t.Fatalf("hash = %q, %v", hash, err)
	}
	if len(h.sem) != 1 {
		t.Fatalf("%d slots held after the hash, want 1 (the test's)", len(h.sem))
	}
	if d := newHasher(4, 0); cap(d.sem) != runtime.GOMAXPROCS(0) {
		t.Fatalf("default slots = %d, want GOMAXPROCS", cap(d.sem))
	}
}
