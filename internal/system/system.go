// Package system assembles Herald's whole system in one process — broker,
// registry, SMTP sink, email service and user service — the way `herald up`
// runs it, so that the command and the end-to-end tests share one wiring.
package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/metrics"
	"github.com/herald-dev/herald/metrics/natslag"
	"github.com/herald-dev/herald/registry"
	"github.com/herald-dev/herald/services/email"
	"github.com/herald-dev/herald/services/email/smtpsink"
	"github.com/herald-dev/herald/services/user"
	"github.com/herald-dev/herald/tracing"
)

// Config is what [Start] runs. Empty URLs mean the embedded default.
type Config struct {
	// DataDir holds everything the embedded parts keep.
	DataDir string
	// NATSListen is the embedded NATS server's address, used when
	// BrokerURL is empty (port 0: a free one).
	NATSListen string
	// SMTPListen is the embedded SMTP sink's address, used when SMTPURL is
	// empty (port 0: a free one).
	SMTPListen string
	// UserListen is the user service's address.
	UserListen string
	// BrokerURL is the broker; empty starts the embedded NATS JetStream.
	BrokerURL string
	// RegistryURL is the registry; empty means NATS KV on the embedded
	// server, or mem:// without one.
	RegistryURL string
	// DatabaseURL is the users' database; empty is SQLite in DataDir.
	DatabaseURL string
	// EmailDatabaseURL is the sent-mail database; empty is SQLite in
	// DataDir.
	EmailDatabaseURL string
	// SMTPURL is the mail server; empty starts the embedded sink.
	SMTPURL string
	// BcryptCost is the cost of password hashes (0: the service default).
	BcryptCost int
	// CreateRate and CreateBurst limit Create per client address, as
	// [user.Config] says (0: the defaults; a negative CreateRate: no limit).
	CreateRate  float64
	CreateBurst int
	// EmailBackoff spaces the email service's redeliveries (zero: its
	// default).
	EmailBackoff broker.Backoff
	// OpenBroker and OpenRegistry open URLs; the caller decides which
	// backends exist.
	OpenBroker   func(ctx context.Context, rawURL string) (broker.Broker, error)
	OpenRegistry func(ctx context.Context, rawURL string) (registry.Registry, error)
	// Logger receives every part's log (discard when nil).
	Logger *slog.Logger
	// TracerProvider, when set, traces the system: each request, its event
	// through the outbox and the broker, each delivery, each SMTP send, all
	// in the request's trace.
	TracerProvider trace.TracerProvider
	// AdminListen, when set, is the address of the admin HTTP listener,
	// which serves /metrics and the web console at / (port 0: a free
	// one).
	AdminListen string
}

// System is the running system. Stop it once.
type System struct {
	// BrokerURL, RegistryURL, SMTPURL, UserAddr and MailboxDir say where
	// each part is ("" for a part not started here).
	BrokerURL, RegistryURL, SMTPURL, UserAddr, MailboxDir string
	// NATSDataDir is the embedded NATS server's data, if one runs.
	NATSDataDir string
	// Broker and Registry are the clients the services use. Broker counts
	// its traffic in Metrics.
	Broker   broker.Broker
	Registry registry.Registry
	// Metrics holds every part's metrics: the broker's traffic and the
	// outbox backlog.
	Metrics *prometheus.Registry
	// AdminAddr is where the admin listener serves /metrics and the
	// console ("" when
	// Config.AdminListen is empty).
	AdminAddr string

	stops []func(context.Context) error
}

// Start starts every part in dependency order. On error, what was started
// is stopped again.
func Start(ctx context.Context, c Config) (s *System, err error) {
	if c.OpenBroker == nil || c.OpenRegistry == nil {
		return nil, errors.New("system: OpenBroker and OpenRegistry are required")
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c.DataDir == "" {
		c.DataDir = ".herald"
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, err
	}
	s = &System{}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop(context.WithoutCancel(ctx)))
		}
	}()

	s.BrokerURL, s.RegistryURL = c.BrokerURL, c.RegistryURL
	if s.BrokerURL == "" {
		host, port, err := splitHostPort(c.NATSListen)
		if err != nil {
			return s, fmt.Errorf("NATS listen address: %w", err)
		}
		if port == 0 {
			port = -1 // natsserver's "pick a free port"
		}
		srv, err := natsserver.Start(natsserver.WithHost(host), natsserver.WithPort(port),
			natsserver.WithDataDir(filepath.Join(c.DataDir, "nats")), natsserver.WithLogger(slog.New(minLevel{log.Handler(), slog.LevelWarn}).With("part", "nats")))
		if err != nil {
			return s, fmt.Errorf("embedded NATS on %s: %w", c.NATSListen, err)
		}
		s.stops = append(s.stops, func(context.Context) error { srv.Shutdown(); return nil })
		s.BrokerURL, s.NATSDataDir = srv.ClientURL(), srv.DataDir()
		if s.RegistryURL == "" {
			s.RegistryURL = s.BrokerURL
		}
	}
	if s.RegistryURL == "" {
		s.RegistryURL = "mem://"
	}
	if s.BrokerURL, err = WithHTTPSecret(s.BrokerURL, c.DataDir); err != nil {
		return s, err
	}
	if s.Broker, err = c.OpenBroker(ctx, s.BrokerURL); err != nil {
		return s, fmt.Errorf("broker %s: %w", redact(s.BrokerURL), err)
	}
	s.Metrics = prometheus.NewRegistry()
	m, err := metrics.New(s.Metrics)
	if err != nil {
		s.stops = append(s.stops, s.Broker.Close)
		return s, err
	}
	if lag, ok := natslag.Func(s.Broker, ""); ok {
		if err := s.Metrics.Register(m.LagCollector(lag)); err != nil {
			s.stops = append(s.stops, s.Broker.Close)
			return s, err
		}
	}
	if c.TracerProvider != nil {
		s.Broker = tracing.Wrap(s.Broker, c.TracerProvider, nil)
	}
	s.Broker = m.Wrap(s.Broker)
	s.stops = append(s.stops, s.Broker.Close)
	if s.Registry, err = c.OpenRegistry(ctx, s.RegistryURL); err != nil {
		return s, fmt.Errorf("registry %s: %w", redact(s.RegistryURL), err)
	}
	s.stops = append(s.stops, s.Registry.Close)

	s.SMTPURL = c.SMTPURL
	if s.SMTPURL == "" {
		s.MailboxDir = filepath.Join(c.DataDir, "mailbox")
		sink, err := smtpsink.Start(c.SMTPListen, s.MailboxDir, smtpsink.WithLogger(log.With("part", "smtp")))
		if err != nil {
			return s, fmt.Errorf("embedded SMTP sink on %s: %w", c.SMTPListen, err)
		}
		s.stops = append(s.stops, sink.Close)
		s.SMTPURL = sink.URL()
	}

	emailDB := c.EmailDatabaseURL
	if emailDB == "" {
		emailDB = "sqlite://" + filepath.Join(c.DataDir, "email.db")
	}
	mailer, err := email.New(email.Config{Broker: s.Broker, SMTPURL: s.SMTPURL, Database: emailDB,
		Backoff: c.EmailBackoff, Logger: log.With("part", "email"), TracerProvider: c.TracerProvider})
	if err != nil {
		return s, err
	}
	if err := mailer.Start(ctx); err != nil {
		return s, fmt.Errorf("email service: %w", err)
	}
	s.stops = append(s.stops, mailer.Stop)

	usersDB := c.DatabaseURL
	if usersDB == "" {
		usersDB = "sqlite://" + filepath.Join(c.DataDir, "users.db")
	}
	users, err := user.NewServer(user.Config{
		Listen: c.UserListen, DatabaseURL: usersDB, BcryptCost: c.BcryptCost,
		Broker: s.Broker, Registry: s.Registry, Logger: log.With("part", "user"),
		Metrics: s.Metrics, TracerProvider: c.TracerProvider,
		CreateRate: c.CreateRate, CreateBurst: c.CreateBurst,
	})
	if err != nil {
		return s, err
	}
	if err := users.Start(ctx); err != nil {
		return s, fmt.Errorf("user service: %w", err)
	}
	s.stops = append(s.stops, users.Shutdown)
	s.UserAddr = users.Addr()

	if c.AdminListen != "" {
		console, err := s.startConsole(ctx, usersDB)
		if err != nil {
			return s, err
		}
		stop, addr, err := serveAdmin(ctx, c.AdminListen, s.adminHandler(console), log)
		if err != nil {
			return s, errors.Join(fmt.Errorf("admin listener on %s: %w", c.AdminListen, err), console.Stop(ctx))
		}
		s.stops = append(s.stops, func(ctx context.Context) error {
			// The console's live streams end first, or Shutdown would wait
			// for them.
			return errors.Join(console.Stop(ctx), stop(ctx))
		})
		s.AdminAddr = addr
	}
	return s, nil
}

// Stop stops every part, in the reverse order of their start, within ctx.
func (s *System) Stop(ctx context.Context) error {
	var errs []error
	for i := len(s.stops) - 1; i >= 0; i-- {
		errs = append(errs, s.stops[i](ctx))
	}
	s.stops = nil
	return errors.Join(errs...)
}

// DefaultGrace is a sensible bound on Stop.
const DefaultGrace = 15 * time.Second

// splitHostPort splits "host:port" with the port as a number.
func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", p)
	}
	return host, port, nil
}
