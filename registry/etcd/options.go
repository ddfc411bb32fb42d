package etcd

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/herald-dev/herald/registry"
)

// DefaultPrefix is the key prefix of the registrations.
const DefaultPrefix = "/herald/registry/"

// DefaultDialTimeout bounds the connection to etcd when the registry makes its
// own client.
const DefaultDialTimeout = 5 * time.Second

// Option configures [New].
type Option func(*config) error

type config struct {
	client      *clientv3.Client
	endpoints   []string
	username    string
	password    string
	dialTimeout time.Duration
	prefix      string
	log         *slog.Logger
}

// WithClient makes the registry use c, which it does not close: the caller
// owns it. Without it, New connects to [WithEndpoints] with a client of its
// own, closed by [Registry.Close].
func WithClient(c *clientv3.Client) Option {
	return func(o *config) error {
		if c == nil {
			return fmt.Errorf("%w: nil etcd client", registry.ErrInvalid)
		}
		o.client = c
		return nil
	}
}

// WithEndpoints sets the etcd endpoints ("127.0.0.1:2379") of the registry's
// own client.
func WithEndpoints(endpoints ...string) Option {
	return func(o *config) error {
		if len(endpoints) == 0 {
			return fmt.Errorf("%w: no etcd endpoint", registry.ErrInvalid)
		}
		for _, e := range endpoints {
			if strings.TrimSpace(e) == "" {
				return fmt.Errorf("%w: empty etcd endpoint", registry.ErrInvalid)
			}
		}
		o.endpoints = append([]string(nil), endpoints...)
		return nil
	}
}

// WithAuth sets the user name and password of the registry's own client.
func WithAuth(username, password string) Option {
	return func(o *config) error {
		o.username, o.password = username, password
		return nil
	}
}

// WithDialTimeout bounds the connection of the registry's own client (d > 0).
func WithDialTimeout(d time.Duration) Option {
	return func(o *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: dial timeout must be > 0, not %v", registry.ErrInvalid, d)
		}
		o.dialTimeout = d
		return nil
	}
}

// WithPrefix sets the key prefix, which must start and end with '/'.
func WithPrefix(prefix string) Option {
	return func(o *config) error {
		if len(prefix) < 2 || prefix[0] != '/' || prefix[len(prefix)-1] != '/' {
			return fmt.Errorf("%w: key prefix %q must start and end with '/'", registry.ErrInvalid, prefix)
		}
		o.prefix = prefix
		return nil
	}
}

// WithLogger sets the logger (discard by default).
func WithLogger(l *slog.Logger) Option {
	return func(o *config) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", registry.ErrInvalid)
		}
		o.log = l
		return nil
	}
}
