package natsserver

import (
	"errors"
	"fmt"
	"log/slog"
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
	host         string
	port         int
	dataDir      string
	maxPayload   int32
	readyTimeout time.Duration
	logger       *slog.Logger
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
		c.name = name
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
