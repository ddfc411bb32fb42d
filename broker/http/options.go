package httpbroker

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/herald-dev/herald/broker"
)

// Defaults of the options.
const (
	DefaultListen         = "127.0.0.1:0"
	DefaultMaxMessageSize = 4 << 20
	DefaultReplayWindow   = 2 * time.Minute
	DefaultCloseFlush     = 5 * time.Second
	// DefaultBatchBytes and DefaultBatchMessages bound one delivery request
	// (a message larger than DefaultBatchBytes goes alone).
	DefaultBatchBytes    = 1 << 20
	DefaultBatchMessages = 512
)

// Option configures [New].
type Option func(*config) error

type config struct {
	spool         string
	keys          [][]byte
	listen        string
	advertise     string
	serverTLS     *tls.Config
	clientTLS     *tls.Config
	log           *slog.Logger
	ttl           time.Duration
	replayWindow  time.Duration
	maxMessage    int
	batchBytes    int
	batchMessages int
	closeFlush    time.Duration
	closeRegistry bool
}

func defaults() config {
	return config{
		listen:        DefaultListen,
		log:           slog.New(slog.DiscardHandler),
		replayWindow:  DefaultReplayWindow,
		maxMessage:    DefaultMaxMessageSize,
		batchBytes:    DefaultBatchBytes,
		batchMessages: DefaultBatchMessages,
		closeFlush:    DefaultCloseFlush,
	}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: http: %s", broker.ErrInvalidOption, fmt.Sprintf(format, args...))
}

// WithSpool sets the directory of the publisher's spool (required). It is
// created if missing; one broker at a time may use it (the spool file is
// locked). Reopening a broker on the same directory delivers what the
// previous one had not delivered.
func WithSpool(dir string) Option {
	return func(c *config) error {
		if dir == "" {
			return invalid("empty spool directory")
		}
		c.spool = dir
		return nil
	}
}

// WithSecret sets the shared secret that signs deliveries (required, at
// least [MinSecretLength] bytes). Every publisher and subscriber of a system
// must share it. older are secrets still accepted from peers, for rotation:
// deliveries are signed with secret and verified against secret and older.
func WithSecret(secret []byte, older ...[]byte) Option {
	return func(c *config) error {
		keys := append([][]byte{secret}, older...)
		c.keys = c.keys[:0]
		for _, k := range keys {
			if len(k) < MinSecretLength {
				return invalid("a secret of %d bytes is too short (at least %d)", len(k), MinSecretLength)
			}
			c.keys = append(c.keys, append([]byte(nil), k...))
		}
		return nil
	}
}

// WithListen sets the address the subscriber endpoint listens on
// (default [DefaultListen]); it is opened at the first Subscribe. On an
// unspecified address (":7000", "0.0.0.0:7000") set [WithAdvertise] too.
func WithListen(addr string) Option {
	return func(c *config) error {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return invalid("listen address %q: %v", addr, err)
		}
		c.listen = addr
		return nil
	}
}

// WithAdvertise sets the host:port publishers reach the subscriber endpoint
// at, when it is not the listen address (a listener on all interfaces, a
// NAT). A port of 0 means the port actually listened on.
func WithAdvertise(hostport string) Option {
	return func(c *config) error {
		host, _, err := net.SplitHostPort(hostport)
		if err != nil || host == "" {
			return invalid("advertise address %q must be host:port", hostport)
		}
		c.advertise = hostport
		return nil
	}
}

// WithTLS makes the subscriber endpoint serve HTTPS with cfg (which must
// hold a certificate); its registrations then say https://.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil || (len(cfg.Certificates) == 0 && cfg.GetCertificate == nil) {
			return invalid("TLS config without a certificate")
		}
		c.serverTLS = cfg
		return nil
	}
}

// WithClientTLS sets the TLS configuration the publisher uses to reach
// https:// subscribers (default: the system's roots).
func WithClientTLS(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil {
			return invalid("nil client TLS config")
		}
		c.clientTLS = cfg
		return nil
	}
}

// WithLogger sets the logger of the broker's warnings (discard by default).
// It never logs message bodies, headers or the secret.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return invalid("nil logger")
		}
		c.log = l
		return nil
	}
}

// WithRegisterTTL sets the registry lease of each subscription (default
// [registry.DefaultTTL]): how long a crashed subscriber stays listed.
func WithRegisterTTL(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return invalid("register TTL %v is under 1s", d)
		}
		c.ttl = d
		return nil
	}
}

// WithReplayWindow sets how far a delivery's timestamp may be from the
// subscriber's clock (default [DefaultReplayWindow]); nonces are remembered
// that long, so a replay within the window is refused too.
func WithReplayWindow(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second || d > time.Hour {
			return invalid("replay window %v is not between 1s and 1h", d)
		}
		c.replayWindow = d
		return nil
	}
}

// WithMaxMessageSize sets the largest message, headers and body together,
// that Publish accepts and the subscriber endpoint reads (default
// [DefaultMaxMessageSize]). Publishers and subscribers should agree.
func WithMaxMessageSize(n int) Option {
	return func(c *config) error {
		if n < 1024 || n > 256<<20 {
			return invalid("max message size %d is not between 1 KiB and 256 MiB", n)
		}
		c.maxMessage = n
		return nil
	}
}

// WithBatch bounds one delivery request to messages messages and about
// bytes bytes (defaults [DefaultBatchMessages], [DefaultBatchBytes]).
func WithBatch(messages, bytes int) Option {
	return func(c *config) error {
		if messages < 1 || messages > maxBatchMessages || bytes < 1 {
			return invalid("batch of %d messages / %d bytes (messages from 1 to %d, bytes > 0)", messages, bytes, maxBatchMessages)
		}
		c.batchMessages, c.batchBytes = messages, bytes
		return nil
	}
}

// WithCloseFlush sets how long Close keeps delivering spooled messages to
// subscribers that are reachable, before it closes the spool (default
// [DefaultCloseFlush]; always bounded by Close's context). What is not
// delivered stays in the spool for the next broker opened on it.
func WithCloseFlush(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return invalid("close flush %v is negative", d)
		}
		c.closeFlush = d
		return nil
	}
}

// WithCloseRegistry makes Close close the registry given to [New] as well,
// for a broker that owns its registry client ([OpenURLWith] sets it).
func WithCloseRegistry() Option {
	return func(c *config) error {
		c.closeRegistry = true
		return nil
	}
}
