// Package dbtest runs database tests on every engine Herald supports: SQLite
// always (a fresh file per test), MySQL/MariaDB and PostgreSQL when
// HERALD_TEST_MYSQL_URL and HERALD_TEST_POSTGRES_URL name a server.
//
// Tests of several packages may share one server and run at the same time
// (go test runs packages in parallel). So that they do not see each other's
// rows, a test on a server holds an advisory lock for its whole run (MySQL
// GET_LOCK, PostgreSQL pg_advisory_lock): tests on one server run one at a
// time, and each starts by dropping the tables it names.
package dbtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/herald-dev/herald/internal/db"
)

// Engine names a database engine and the environment variable that points
// the tests at a server of it ("" for SQLite, which needs none).
type Engine struct {
	Name string
	Env  string
}

// Engines returns the engines [Run] tries, in order.
func Engines() []Engine {
	return []Engine{
		{Name: db.SQLite},
		{Name: db.MySQL, Env: "HERALD_TEST_MYSQL_URL"},
		{Name: db.Postgres, Env: "HERALD_TEST_POSTGRES_URL"},
	}
}

// lockKey is the advisory lock test processes take on a shared server.
const lockKey = 7270001

// Run runs f as one subtest per engine, with the URL of a database f may
// open as often as it likes (with [db.Open]). On a server, the tables are
// dropped first and the test holds the server's test lock; an engine whose
// variable is unset is skipped with a message naming the variable.
func Run(t *testing.T, tables []string, f func(t *testing.T, url string)) {
	t.Helper()
	for _, e := range Engines() {
		t.Run(e.Name, func(t *testing.T) {
			f(t, URL(t, e, tables...))
		})
	}
}

// URL returns the URL of a clean database of engine e for t (see [Run]), or
// skips t when e's variable is unset.
func URL(t testing.TB, e Engine, tables ...string) string {
	t.Helper()
	if e.Env == "" {
		return "sqlite://" + filepath.Join(t.TempDir(), "test.db")
	}
	u := os.Getenv(e.Env)
	if u == "" {
		t.Skipf("%s is not set: no %s server to test against (scripts/servers/start-%s.sh starts one)", e.Env, e.Name, serverScript(e.Name))
	}
	lock(t, e.Name, u)
	g := Open(t, u)
	for _, table := range tables {
		if err := g.Migrator().DropTable(table); err != nil {
			t.Fatalf("dbtest: drop %s: %v", table, err)
		}
	}
	return u
}

// Open opens rawURL with [db.Open] and closes it when t ends.
func Open(t testing.TB, rawURL string) *gorm.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := db.Open(ctx, rawURL)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() {
		if s, err := g.DB(); err == nil {
			s.Close()
		}
	})
	return g
}

// lock takes the server's test lock on a connection of its own, held until
// t ends (closing the connection releases it).
func lock(t testing.TB, engine, rawURL string) {
	t.Helper()
	g := Open(t, rawURL)
	sqlDB, err := g.DB()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		t.Fatalf("dbtest: lock: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	var got int
	switch engine {
	case db.MySQL:
		err = conn.QueryRowContext(ctx, "SELECT GET_LOCK('herald_test', 300)").Scan(&got)
	default:
		got = 1
		_, err = conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", lockKey)
	}
	if err != nil || got != 1 {
		t.Fatalf("dbtest: take the test lock on %s: %v (got %d)", engine, err, got)
	}
}

func serverScript(engine string) string {
	if engine == db.MySQL {
		return "mariadb"
	}
	return engine
}
