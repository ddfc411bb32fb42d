package middleware_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-dev/herald/internal/db"
	"github.com/herald-dev/herald/middleware"
)

// sqlStores returns an opener per SQL database available: SQLite always,
// MySQL and PostgreSQL when their test URLs are set.
func sqlStores(t *testing.T) map[string]func(t *testing.T) middleware.DedupeStore {
	open := func(url func(t *testing.T) string) func(t *testing.T) middleware.DedupeStore {
		return func(t *testing.T) middleware.DedupeStore {
			g, err := db.Open(context.Background(), url(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { // the servers are shared: give the connections back
				if sqlDB, err := g.DB(); err == nil {
					_ = sqlDB.Close()
				}
			})
			s, err := middleware.NewSQLDedupeStore(context.Background(), g)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	stores := map[string]func(t *testing.T) middleware.DedupeStore{
		"sqlite": open(func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "dedupe.db") }),
	}
	for name, env := range map[string]string{"mysql": "HERALD_TEST_MYSQL_URL", "postgres": "HERALD_TEST_POSTGRES_URL"} {
		if u := os.Getenv(env); u != "" {
			stores[name] = open(func(*testing.T) string { return u })
		} else {
			t.Logf("%s store not tested: %s is not set", name, env)
		}
	}
	return stores
}

func TestSQLDedupeForget(t *testing.T) {
	ctx := context.Background()
	g, err := db.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := middleware.NewSQLDedupeStore(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		if _, err := s.Claim(ctx, k, "o", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, k, "o"); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Forget(ctx, time.Now().Add(time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("forgot %d, %v; want 2", n, err)
	}
	if r, _ := s.Claim(ctx, "a", "o2", time.Minute); r != middleware.Claimed {
		t.Fatalf("forgotten key: %v, want claimed", r)
	}
}
