package redis

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/herald-dev/herald/broker"
)

// Scheme is the URL scheme of the Redis Streams backend: "redis://". The
// TLS form "rediss://" is accepted too (see [SchemeTLS]).
const Scheme = "redis"

// SchemeTLS is the URL scheme of the Redis Streams backend over TLS.
const SchemeTLS = "rediss"

// heraldQuery returns the query parameters of [OpenURL] that are Herald's.
func heraldQuery() []string {
	return []string{"maxlen", "prefix", "prefetch", "publish_timeout", "block", "max_message_size"}
}

// clientQuery returns the query parameters of [OpenURL] passed on to go-redis.
func clientQuery() []string {
	return []string{"protocol", "client_name", "dial_timeout", "read_timeout", "write_timeout", "pool_size", "max_retries", "min_retry_backoff", "max_retry_backoff"}
}

// OpenURL opens a broker for a "redis://" or "rediss://" URL; it is a
// [broker.OpenFunc]:
//
//	redis://[user:password@]host[:port][/db][?maxlen=N&prefix=herald&...]
//
// Herald's query parameters: maxlen ([WithMaxLen]), prefix ([WithPrefix]),
// prefetch ([WithPrefetch]), publish_timeout ([WithPublishTimeout], a Go
// duration), block ([WithBlock]), max_message_size ([WithMaxMessageSize],
// bytes). These go-redis connection settings pass through: protocol,
// client_name, dial_timeout, read_timeout, write_timeout, pool_size,
// max_retries, min_retry_backoff, max_retry_backoff. Any other parameter is
// an error.
func OpenURL(ctx context.Context, u *url.URL) (broker.Broker, error) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != Scheme && scheme != SchemeTLS {
		return nil, fmt.Errorf("redis: open %q: %w: scheme is not %q or %q", u.Redacted(), broker.ErrBadURL, Scheme, SchemeTLS)
	}
	if err := broker.CheckQuery(u, append(heraldQuery(), clientQuery()...)...); err != nil {
		return nil, fmt.Errorf("redis: open %q: %w", u.Redacted(), err)
	}
	q := u.Query()
	var opts []Option
	bad := func(k string, err error) error {
		return fmt.Errorf("redis: open %q: %w: %s: %v", u.Redacted(), broker.ErrBadURL, k, err)
	}
	for _, k := range heraldQuery() {
		v := q.Get(k)
		if !q.Has(k) {
			continue
		}
		q.Del(k)
		switch k {
		case "maxlen":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, bad(k, err)
			}
			opts = append(opts, WithMaxLen(n))
		case "prefix":
			opts = append(opts, WithPrefix(v))
		case "prefetch", "max_message_size":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, bad(k, err)
			}
			if k == "prefetch" {
				opts = append(opts, WithPrefetch(n))
			} else {
				opts = append(opts, WithMaxMessageSize(n))
			}
		case "publish_timeout", "block":
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, bad(k, err)
			}
			if k == "block" {
				opts = append(opts, WithBlock(d))
			} else {
				opts = append(opts, WithPublishTimeout(d))
			}
		}
	}
	rest := *u
	rest.RawQuery = q.Encode()
	b, err := New(ctx, rest.String(), opts...)
	if err != nil {
		return nil, fmt.Errorf("redis: open %q: %w", u.Redacted(), err)
	}
	return b, nil
}
