package redisdedupe

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/middleware"
)

// Defaults of [New].
const (
	// DefaultPrefix starts every key of the store unless [WithPrefix] says
	// otherwise.
	DefaultPrefix = "herald:dedupe:"
	// DefaultRetention is how long a done record is kept.
	DefaultRetention = 30 * 24 * time.Hour
)

var _ middleware.DedupeStore = (*Store)(nil)

// Store is a [middleware.DedupeStore] in Redis keys (see the package doc).
// It is safe for concurrent use.
type Store struct {
	c         goredis.UniversalClient
	prefix    string
	retention time.Duration
}

type config struct {
	prefix    string
	retention time.Duration
}

// Option configures [New].
type Option func(*config) error

func invalid(format string, args ...any) error {
	return fmt.Errorf("redisdedupe: %w: "+format, append([]any{broker.ErrInvalidOption}, args...)...)
}

// WithPrefix sets what every key of the store starts with ([DefaultPrefix]
// by default). Give each consumer a prefix of its own, so that one
// consumer's records never make another skip a message.
func WithPrefix(p string) Option {
	return func(c *config) error {
		if p == "" {
			return invalid("empty prefix")
		}
		c.prefix = p
		return nil
	}
}

// WithRetention sets how long a done record is kept ([DefaultRetention] by
// default; 0 keeps records for good). It must be 0 or at least a minute.
func WithRetention(d time.Duration) Option {
	return func(c *config) error {
		if err := middleware.CheckRetention(d); err != nil {
			return invalid("%v", err)
		}
		c.retention = d
		return nil
	}
}

// New returns a store on c. It sends nothing to the server until used.
//
// Options: [WithPrefix], [WithRetention].
func New(c goredis.UniversalClient, opts ...Option) (*Store, error) {
	if c == nil {
		return nil, invalid("nil client")
	}
	cfg := config{prefix: DefaultPrefix, retention: DefaultRetention}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	return &Store{c: c, prefix: cfg.prefix, retention: cfg.retention}, nil
}

// Prefix returns what every key of the store starts with.
func (s *Store) Prefix() string { return s.prefix }

// claimScript claims KEYS[1] for ARGV[1] for ARGV[2] milliseconds. It
// returns 1 when claimed, 2 when done, 3 when claimed by someone, 0 when the
// key holds something this store did not write.
var claimScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'claimed:' .. ARGV[1], 'PX', ARGV[2])
  return 1
end
if string.sub(v, 1, 5) == 'done:' then return 2 end
if string.sub(v, 1, 8) == 'claimed:' then return 3 end
return 0
`)

// completeScript marks KEYS[1] done by ARGV[1] if ARGV[1] holds it or
// nobody does, expiring in ARGV[2] milliseconds ("0": never). It returns 1
// when it wrote the record.
var completeScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= 'claimed:' .. ARGV[1] then return 0 end
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], 'done:' .. ARGV[1])
else
  redis.call('SET', KEYS[1], 'done:' .. ARGV[1], 'PX', ARGV[2])
end
return 1
`)

// releaseScript deletes KEYS[1] if ARGV[1] holds a claim on it.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == 'claimed:' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

func check(key, owner string) error {
	switch {
	case key == "":
		return errors.New("redisdedupe: empty key")
	case owner == "":
		return errors.New("redisdedupe: empty owner")
	}
	return nil
}

// Claim implements [middleware.DedupeStore].
func (s *Store) Claim(ctx context.Context, key, owner string, ttl time.Duration) (middleware.ClaimResult, error) {
	if err := check(key, owner); err != nil {
		return 0, err
	}
	ms := max(ttl.Milliseconds(), 1)
	r, err := claimScript.Run(ctx, s.c, []string{s.prefix + key}, owner, ms).Int()
	if err != nil {
		return 0, fmt.Errorf("redisdedupe: claim %q: %w", key, err)
	}
	switch r {
	case 1:
		return middleware.Claimed, nil
	case 2:
		return middleware.Done, nil
	case 3:
		return middleware.Busy, nil
	}
	return 0, fmt.Errorf("redisdedupe: claim %q: key %q holds something else than a dedupe record", key, s.prefix+key)
}

// Complete implements [middleware.DedupeStore].
func (s *Store) Complete(ctx context.Context, key, owner string) error {
	if err := check(key, owner); err != nil {
		return err
	}
	if err := completeScript.Run(ctx, s.c, []string{s.prefix + key}, owner, s.retention.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("redisdedupe: complete %q: %w", key, err)
	}
	return nil
}

// Release implements [middleware.DedupeStore].
func (s *Store) Release(ctx context.Context, key, owner string) error {
	if err := check(key, owner); err != nil {
		return err
	}
	if err := releaseScript.Run(ctx, s.c, []string{s.prefix + key}, owner).Err(); err != nil {
		return fmt.Errorf("redisdedupe: release %q: %w", key, err)
	}
	return nil
}
