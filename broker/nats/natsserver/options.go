package natsserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of [Start].
const (
	DefaultHost         = "127.0.0.1"
	DefaultPort         = -1 // a random free port
	DefaultMaxPayload   = 8 << 20
	DefaultReadyTimeout = 10 * time.Second
)

// ErrInvalidOption is wrapped by the errors of options given invalid values.
var ErrInvalidOption = errors.New("natsserver: invalid option")

type config struct {
	name         string
	nameSet      bool // WithServerName was given: a cluster node needs a name of its own
	host         string
	port         int
	dataDir      string
	maxPayload   int32
	readyTimeout time.Duration
	logger       *slog.Logger

	clusterName string // "" : a single server, no cluster
	clusterHost string
	clusterPort int
	routes      []*url.URL
}

func defaults() config {
	return config{
		name:         "herald",
		host:         DefaultHost,
		port:         DefaultPort,
		maxPayload:   DefaultMaxPayload,
		readyTimeout: DefaultReadyTimeout,
	}
}

// Option configures [Start].
type Option func(*config) error

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// WithHost sets the interface to listen on ([DefaultHost] by default;
// "0.0.0.0" for every interface).
func WithHost(host string) Option {
	return func(c *config) error {
		if host == "" {
			return invalid("empty host")
		}
		c.host = host
		return nil
	}
}

// WithPort sets the client port; -1 (the default) picks a random free port.
func WithPort(port int) Option {
	return func(c *config) error {
		if port < -1 || port == 0 || port > 65535 {
			return invalid("port must be -1 (random) or in 1..65535, not %d", port)
		}
		c.port = port
		return nil
	}
}

// WithDataDir keeps JetStream's data in dir (created if missing). Without it
// the data goes to a temporary directory removed by [Server.Shutdown].
func WithDataDir(dir string) Option {
	return func(c *config) error {
		if dir == "" {
			return invalid("empty data directory")
		}
		c.dataDir = dir
		return nil
	}
}

// WithMaxPayload sets the largest message (headers and body) the server
// accepts, [DefaultMaxPayload] (8 MiB) by default; NATS allows up to 64 MiB.
func WithMaxPayload(n int32) Option {
	return func(c *config) error {
		if n < 1024 || n > 64<<20 {
			return invalid("max payload must be in 1 KiB..64 MiB, not %d", n)
		}
		c.maxPayload = n
		return nil
	}
}

// WithServerName sets the server's name, "herald" by default.
func WithServerName(name string) Option {
	return func(c *config) error {
		if name == "" {
			return invalid("empty server name")
		}
		c.name, c.nameSet = name, true
		return nil
	}
}

// WithReadyTimeout bounds how long [Start] waits for the server to accept
// clients ([DefaultReadyTimeout] by default).
func WithReadyTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("ready timeout must be > 0, not %v", d)
		}
		c.readyTimeout = d
		return nil
	}
}

// WithLogger sends the server's log to l: warnings at Warn, errors at Error,
// and its notices (the start-up banner, "Server is ready"…) at Debug, so
// that they stay out of an Info log. Without it the server logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return invalid("nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithCluster makes the server a node of the NATS cluster name, accepting
// the routes of the other nodes on host:port (port -1 picks a free one;
// [Server.ClusterURL] tells which). JetStream then runs clustered: streams
// can have replicas on several nodes, and a node that dies is replaced as
// leader of its streams by another. Every node of one cluster needs the
// same cluster name, a server name of its own ([WithServerName]) and at
// least one route ([WithRoutes]): nats-server starts clustered JetStream
// only with configured routes. A cluster of three nodes survives the loss
// of one.
func WithCluster(name, host string, port int) Option {
	return func(c *config) error {
		switch {
		case name == "" || strings.ContainsAny(name, " \t\r\n"):
			return invalid("cluster name %q must be non-empty, without spaces", name)
		case host == "":
			return invalid("empty cluster host")
		case port < -1 || port == 0 || port > 65535:
			return invalid("cluster port must be -1 (random) or in 1..65535, not %d", port)
		}
		c.clusterName, c.clusterHost, c.clusterPort = name, host, port
		return nil
	}
}

// WithRoutes sets the cluster addresses of the nodes this one connects to,
// as "nats-route://host:port" URLs (user:password@ accepted). Listing every
// node of the cluster, this one's own included, is the usual set-up: the
// same list for all, and nats-server ignores the route to itself. Nodes
// also learn of each other through the ones they reach. It needs
// [WithCluster].
func WithRoutes(routes ...string) Option {
	return func(c *config) error {
		if len(routes) == 0 {
			return invalid("no routes")
		}
		us := make([]*url.URL, 0, len(routes))
		for _, r := range routes {
			u, err := parseRoute(r)
			if err != nil {
				return err
			}
			us = append(us, u)
		}
		c.routes = us
		return nil
	}
}

// parseRoute parses one route URL: nats-route:// (or nats://) with a host
// and a port.
func parseRoute(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // it repeats the URL, password included
			err = ue.Err
		}
		return nil, invalid("route: %v", err)
	}
	if u.Scheme != "nats-route" && u.Scheme != "nats" {
		return nil, invalid("route %q: want nats-route://host:port", u.Redacted())
	}
	host, port, err := net.SplitHostPort(u.Host)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return nil, invalid("route %q: want nats-route://host:port with a port in 1..65535", u.Redacted())
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return nil, invalid("route %q: want nats-route://host:port and nothing after it", u.Redacted())
	}
	return u, nil
}
