// Package dedupestore opens the [middleware.DedupeStore] of a consumer by
// name: "broker", the records on the engine of the broker the consumer
// already uses (so every replica shares them with no other server to run),
// or a database URL. It is where the engines' stores are assembled, for
// `herald serve email` and the tests that run replicas the way it does.
//
// "broker" is:
//
//   - NATS (a broker that exposes a jetstream.JetStream through
//     [broker.As]): a JetStream KV bucket, "herald_dedupe_<name>"
//     ([natsdedupe]).
//   - Redis (a broker that exposes a *goredis.Client): keys
//     "herald:dedupe:<name>:<message key>" ([redisdedupe]).
//   - mem: process memory ([middleware.MemoryDedupeStore]), which is where
//     that broker's messages live too.
//   - any other engine (RabbitMQ, Kafka, Pub/Sub, SQS, HTTP):
//     [ErrUnsupported]. Their engines have no place for records with
//     atomic claims, and a local file per replica would dedupe nothing
//     across replicas, so the caller must name a database every replica
//     shares.
package dedupestore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	goredis "github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/internal/db"
	"github.com/herald-dev/herald/middleware"
	"github.com/herald-dev/herald/middleware/natsdedupe"
	"github.com/herald-dev/herald/middleware/redisdedupe"
)

// Broker is the spec of the store on the broker's engine.
const Broker = "broker"

// Forever, as [Config.Retention], keeps done records for good.
const Forever time.Duration = -1

// ErrUnsupported is wrapped by [Open] when spec is [Broker] and the broker's
// engine cannot hold the records.
var ErrUnsupported = errors.New("the broker's engine cannot hold dedupe records")

// Config says whose records a store holds and how.
type Config struct {
	// Name tells one consumer's records from another's on a shared
	// engine (letters, digits, '-', '_'); required.
	Name string
	// Retention is how long a broker store keeps a done record: 0 is the
	// store's default (30 days), [Forever] for good. A database keeps
	// records until they are deleted (see [middleware.SQLDedupeStore.Forget]).
	Retention time.Duration
	// Replicas is how many servers of a JetStream cluster keep the NATS
	// bucket (0: as many as the broker's streams, one by default).
	Replicas int
}

// Store is an open store and where it keeps its records.
type Store struct {
	middleware.DedupeStore
	// Where says where the records are, for people: "NATS KV bucket
	// herald_dedupe_email", a redacted database URL…
	Where string
	// Shared reports whether every process that opens the same spec (on
	// the same broker) shares the records.
	Shared bool

	close func() error
}

// Close releases what Open opened (a database connection); the broker's
// connection stays the caller's.
func (s *Store) Close() error {
	if s.close == nil {
		return nil
	}
	return s.close()
}

// Open opens the store spec names: [Broker], on b's engine, or a database
// URL (sqlite://, mysql://, postgres://; see package db). ctx bounds the
// set-up.
func Open(ctx context.Context, spec string, b broker.Broker, c Config) (*Store, error) {
	if err := checkConfig(c); err != nil {
		return nil, err
	}
	if spec != Broker {
		if !strings.Contains(spec, "://") {
			return nil, fmt.Errorf("dedupe store %q: want %q or a database URL (sqlite://, mysql://, postgres://)", spec, Broker)
		}
		return openSQL(ctx, spec)
	}
	if b == nil {
		return nil, errors.New("dedupe store: no broker")
	}
	var js jetstream.JetStream
	if broker.As(b, &js) {
		if r, ok := underneath[replicated](b); ok && c.Replicas == 0 {
			// The records are as precious as the events: kept on as
			// many servers as the broker's streams.
			c.Replicas = r.Replicas()
		}
		return openNATS(ctx, js, c)
	}
	var rc *goredis.Client
	if broker.As(b, &rc) {
		return openRedis(rc, c)
	}
	if isMem(b) {
		s := &middleware.MemoryDedupeStore{Retention: retention(c.Retention, natsdedupe.DefaultRetention)}
		return &Store{DedupeStore: s, Where: "process memory (the mem broker's)"}, nil
	}
	return nil, fmt.Errorf("dedupe store on a %T: %w", b, ErrUnsupported)
}

func checkConfig(c Config) error {
	if c.Name == "" {
		return errors.New("dedupe store: no name")
	}
	for _, r := range c.Name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("dedupe store: name %q: only letters, digits, '-' and '_'", c.Name)
		}
	}
	if c.Retention != Forever {
		if err := middleware.CheckRetention(c.Retention); err != nil {
			return fmt.Errorf("dedupe store: %w", err)
		}
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("dedupe store: %d replicas: want 1 to 5", c.Replicas)
	}
	return nil
}

// retention turns Config.Retention into a store option's value.
func retention(d time.Duration, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func openNATS(ctx context.Context, js jetstream.JetStream, c Config) (*Store, error) {
	opts := []natsdedupe.Option{
		natsdedupe.WithBucket("herald_dedupe_" + c.Name),
		natsdedupe.WithRetention(retention(c.Retention, natsdedupe.DefaultRetention)),
	}
	if c.Replicas > 0 {
		opts = append(opts, natsdedupe.WithReplicas(c.Replicas))
	}
	s, err := natsdedupe.New(ctx, js, opts...)
	if err != nil {
		return nil, err
	}
	return &Store{DedupeStore: s, Where: "NATS KV bucket " + s.Bucket(), Shared: true}, nil
}

func openRedis(rc *goredis.Client, c Config) (*Store, error) {
	s, err := redisdedupe.New(rc,
		redisdedupe.WithPrefix("herald:dedupe:"+c.Name+":"),
		redisdedupe.WithRetention(retention(c.Retention, redisdedupe.DefaultRetention)))
	if err != nil {
		return nil, err
	}
	return &Store{DedupeStore: s, Where: "Redis keys " + s.Prefix() + "*", Shared: true}, nil
}

func openSQL(ctx context.Context, rawURL string) (*Store, error) {
	g, err := db.Open(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	s, err := middleware.NewSQLDedupeStore(ctx, g)
	if err != nil {
		_ = closeDB(g)
		return nil, fmt.Errorf("%s: %w", db.Redact(rawURL), err)
	}
	return &Store{
		DedupeStore: s,
		Where:       db.Redact(rawURL),
		Shared:      !strings.HasPrefix(strings.ToLower(rawURL), "sqlite:"),
		close:       func() error { return closeDB(g) },
	}, nil
}

func closeDB(g *gorm.DB) error {
	sqlDB, err := g.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// isMem reports whether b is, or wraps, the in-process broker.
func isMem(b broker.Broker) bool {
	_, ok := underneath[*mem.Broker](b)
	return ok
}

// replicated is a broker that gives its streams a number of replicas
// (*nats.Broker).
type replicated interface{ Replicas() int }

// underneath returns the first of b and the brokers it wraps (metrics,
// tracing) that is a T.
func underneath[T any](b broker.Broker) (T, bool) {
	for b != nil {
		if t, ok := b.(T); ok {
			return t, true
		}
		u, ok := b.(interface{ Unwrap() broker.Broker })
		if !ok {
			break
		}
		b = u.Unwrap()
	}
	var zero T
	return zero, false
}
