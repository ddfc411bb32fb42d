package rabbitmq

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/herald-dev/herald/broker"
)

// Scheme is the URL scheme of the RabbitMQ backend: "amqp://". The TLS form
// "amqps://" is accepted too (see [SchemeTLS]).
const Scheme = "amqp"

// SchemeTLS is the URL scheme of the RabbitMQ backend over TLS.
const SchemeTLS = "amqps"

// queryKeys returns the query parameters [OpenURL] takes.
func queryKeys() []string {
	return []string{"exchange", "queue_type", "queue_expiry", "prefetch", "publish_channels", "max_pending", "publish_timeout", "max_message_size", "heartbeat"}
}

// OpenURL opens a broker for an "amqp://" or "amqps://" URL; it is a
// [broker.OpenFunc]:
//
//	amqp://user:password@host[:port][/vhost][?exchange=herald&queue_type=quorum&...]
//
// The query parameters are exchange ([WithExchange]), queue_type ("quorum"
// or "classic", [WithQueueType]), queue_expiry ([WithQueueExpiry], a Go
// duration), prefetch ([WithPrefetch]), publish_channels
// ([WithPublishChannels]), max_pending ([WithMaxPending]), publish_timeout
// ([WithPublishTimeout]), max_message_size ([WithMaxMessageSize], bytes)
// and heartbeat ([WithHeartbeat]). Any other parameter is an error. The
// vhost is the path, percent-encoded ("/" is %2F); without a path it is "/".
func OpenURL(ctx context.Context, u *url.URL) (broker.Broker, error) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != Scheme && scheme != SchemeTLS {
		return nil, fmt.Errorf("rabbitmq: open %q: %w: scheme is not %q or %q", u.Redacted(), broker.ErrBadURL, Scheme, SchemeTLS)
	}
	if err := broker.CheckQuery(u, queryKeys()...); err != nil {
		return nil, fmt.Errorf("rabbitmq: open %q: %w", u.Redacted(), err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("rabbitmq: open %q: %w: no host", u.Redacted(), broker.ErrBadURL)
	}
	q := u.Query()
	var opts []Option
	bad := func(k string, err error) error {
		return fmt.Errorf("rabbitmq: open %q: %w: %s: %v", u.Redacted(), broker.ErrBadURL, k, err)
	}
	for _, k := range queryKeys() {
		if !q.Has(k) {
			continue
		}
		v := q.Get(k)
		switch k {
		case "exchange":
			opts = append(opts, WithExchange(v))
		case "queue_type":
			opts = append(opts, WithQueueType(QueueType(v)))
		case "queue_expiry", "publish_timeout", "heartbeat":
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, bad(k, err)
			}
			switch k {
			case "queue_expiry":
				opts = append(opts, WithQueueExpiry(d))
			case "publish_timeout":
				opts = append(opts, WithPublishTimeout(d))
			default:
				opts = append(opts, WithHeartbeat(d))
			}
		default:
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, bad(k, err)
			}
			switch k {
			case "prefetch":
				opts = append(opts, WithPrefetch(n))
			case "publish_channels":
				opts = append(opts, WithPublishChannels(n))
			case "max_pending":
				opts = append(opts, WithMaxPending(n))
			default:
				opts = append(opts, WithMaxMessageSize(n))
			}
		}
	}
	rest := *u
	rest.RawQuery = ""
	rest.Scheme = scheme
	b, err := New(ctx, rest.String(), opts...)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: open %q: %w", u.Redacted(), err)
	}
	return b, nil
}
