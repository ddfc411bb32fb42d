// Package db opens Herald's SQL databases through gorm by URL, the same way
// for every service: SQLite (pure Go, no cgo) by default, MySQL/MariaDB and
// PostgreSQL in production.
//
// URLs:
//
//	sqlite://.herald/users.db          relative path
//	sqlite:///var/lib/herald/users.db  absolute path
//	sqlite://:memory:                  private in-memory database
//	mysql://user:pass@host:3306/herald
//	postgres://user:pass@host:5432/herald?sslmode=disable
//
// gorm's SQL logger is off: statements carry parameters, and parameters can
// be password hashes.
package db

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// ErrBadURL is wrapped by the errors of a database URL that cannot be used.
var ErrBadURL = errors.New("db: invalid database URL")

// ErrUnavailable is wrapped when the database does not answer.
var ErrUnavailable = errors.New("db: database unavailable")

// Dialect names, as gorm's Dialector.Name returns them.
const (
	SQLite   = "sqlite"
	MySQL    = "mysql"
	Postgres = "postgres"
)

// Open opens the database at rawURL and checks that it answers. The returned
// *gorm.DB reports translated errors (gorm.ErrDuplicatedKey for a unique
// violation) on every dialect.
func Open(ctx context.Context, rawURL string) (*gorm.DB, error) {
	dialector, sqliteDB, err := dialectorFor(rawURL)
	if err != nil {
		return nil, err
	}
	g, err := gorm.Open(dialector, &gorm.Config{
		Logger:         logger.Discard,
		TranslateError: true,
		NowFunc:        func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, Redact(rawURL), err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, err
	}
	if sqliteDB {
		// SQLite has one writer; one connection turns "database is locked"
		// into waiting, and keeps a :memory: database a single database.
		sqlDB.SetMaxOpenConns(1)
	} else {
		sqlDB.SetMaxOpenConns(32)
		sqlDB.SetMaxIdleConns(8)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, Redact(rawURL), err)
	}
	return g, nil
}

// Redact returns rawURL with its password replaced by "xxxxx", for logs and
// errors.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func dialectorFor(rawURL string) (d gorm.Dialector, isSQLite bool, err error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, false, fmt.Errorf("%w: %q has no scheme (want sqlite://, mysql:// or postgres://)", ErrBadURL, Redact(rawURL))
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		path, query, _ := strings.Cut(rest, "?")
		if query != "" {
			return nil, false, fmt.Errorf("%w: sqlite URLs take no query parameters", ErrBadURL)
		}
		if path == "" {
			return nil, false, fmt.Errorf("%w: sqlite URL has no path", ErrBadURL)
		}
		dsn := path
		if path != ":memory:" {
			if dir := filepath.Dir(path); dir != "." {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return nil, false, fmt.Errorf("db: create %s: %w", dir, err)
				}
			}
			// The file may hold password hashes: only its owner reads it.
			f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				return nil, false, fmt.Errorf("db: create %s: %w", path, err)
			}
			f.Close()
			dsn = path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
		}
		return sqlite.Open(dsn), true, nil
	case "mysql", "mariadb":
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %v", ErrBadURL, unwrapURLError(err))
		}
		if err := checkHostDB(u); err != nil {
			return nil, false, err
		}
		q := u.Query()
		q.Set("parseTime", "true")
		q.Set("loc", "UTC")
		if q.Get("charset") == "" {
			q.Set("charset", "utf8mb4")
		}
		auth := ""
		if u.User != nil {
			pw, _ := u.User.Password()
			auth = u.User.Username() + ":" + pw + "@"
		}
		dsn := fmt.Sprintf("%stcp(%s)/%s?%s", auth, u.Host, strings.TrimPrefix(u.Path, "/"), q.Encode())
		return mysql.Open(dsn), false, nil
	case "postgres", "postgresql":
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %v", ErrBadURL, unwrapURLError(err))
		}
		if err := checkHostDB(u); err != nil {
			return nil, false, err
		}
		return postgres.Open(rawURL), false, nil
	}
	return nil, false, fmt.Errorf("%w: unknown scheme %q (want sqlite://, mysql:// or postgres://)", ErrBadURL, scheme)
}

func checkHostDB(u *url.URL) error {
	if u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("%w: %s needs a host and a database name", ErrBadURL, u.Redacted())
	}
	return nil
}

// unwrapURLError drops the input a *url.Error repeats: it may hold a password.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
