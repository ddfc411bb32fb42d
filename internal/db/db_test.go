package db_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-dev/herald/internal/db"
)

func TestOpenSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "x.db")
	g, err := db.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ ID int }
	if err := g.AutoMigrate(&row{}); err != nil {
		t.Fatal(err)
	}
	if err := g.Create(&row{ID: 7}).Error; err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("database file not created: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("database file mode %v, want 0600 (it holds password hashes)", fi.Mode().Perm())
	}
	if g.Name() != db.SQLite {
		t.Fatalf("dialect %q", g.Name())
	}
	mem, err := db.Open(ctx, "sqlite://:memory:")
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.AutoMigrate(&row{}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenBadURLs(t *testing.T) {
	for _, u := range []string{"", "nope", "oracle://x/y", "sqlite://", "sqlite://a.db?x=1", "mysql://u:secretpw@/db", "postgres://u:secretpw@host"} {
		_, err := db.Open(context.Background(), u)
		if !errors.Is(err, db.ErrBadURL) {
			t.Errorf("Open(%q) = %v, want ErrBadURL", u, err)
		}
		if err != nil && strings.Contains(err.Error(), "secretpw") {
			t.Errorf("Open(%q) error shows the password: %v", u, err)
		}
	}
}

func TestOpenUnavailable(t *testing.T) {
	// Port 1 on loopback refuses connections.
	_, err := db.Open(context.Background(), "postgres://u:secretpw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2")
	if !errors.Is(err, db.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "secretpw") {
		t.Fatalf("error shows the password: %v", err)
	}
}

func TestOpenServers(t *testing.T) {
	for _, env := range []string{"HERALD_TEST_MYSQL_URL", "HERALD_TEST_POSTGRES_URL"} {
		t.Run(env, func(t *testing.T) {
			u := os.Getenv(env)
			if u == "" {
				t.Skipf("%s is not set: no server to test against", env)
			}
			g, err := db.Open(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			var one int
			if err := g.Raw("SELECT 1").Scan(&one).Error; err != nil || one != 1 {
				t.Fatalf("SELECT 1 = %d, %v", one, err)
			}
		})
	}
}
