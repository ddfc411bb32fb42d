package user

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/internal/db"
	"github.com/herald-dev/herald/metrics"
	"github.com/herald-dev/herald/outbox"
	"github.com/herald-dev/herald/registry"
	"github.com/herald-dev/herald/tracing"
)

// ServiceName is the name the user service registers under.
const ServiceName = "herald.user"

// Defaults of a [Config].
const (
	DefaultListen      = "127.0.0.1:0"
	DefaultDatabaseURL = "sqlite://.herald/users.db"
)

// Config is what a [Server] runs with. The zero value of each field but
// Broker is a working default.
type Config struct {
	// Listen is the TCP address to listen on (default [DefaultListen]).
	Listen string
	// Advertise is the host:port registered in the registry, for when
	// Listen is not reachable as is (":8080", "0.0.0.0:8080"); by default
	// the listener's address.
	Advertise string
	// DatabaseURL is the database (sqlite://, mysql://, postgres://; default
	// [DefaultDatabaseURL]). Ignored when DB is set.
	DatabaseURL string
	// DB is an open database to use instead of DatabaseURL; the server does
	// not close it.
	DB *gorm.DB
	// BcryptCost is the bcrypt cost (default [DefaultBcryptCost]).
	BcryptCost int
	// HashConcurrency bounds the passwords hashed at once (default
	// runtime.GOMAXPROCS(0); see [WithHashConcurrency]).
	HashConcurrency int
	// Broker receives the user.registered events (required). The server
	// does not close it.
	Broker broker.Broker
	// Registry, when set, lists the server as [ServiceName] while it runs.
	// The server does not close it.
	Registry registry.Registry
	// RegistryTTL is the lease of the registration (default
	// registry.DefaultTTL).
	RegistryTTL time.Duration
	// Logger receives the server's logs (discard by default).
	Logger *slog.Logger
	// MaxRequestBytes bounds a request's message (default
	// [DefaultMaxRequestBytes]).
	MaxRequestBytes int64
	// CreateRate limits Create per client address, in calls per second
	// (0: [DefaultCreateRate]; negative: no limit), with bursts of
	// CreateBurst (0: [DefaultCreateBurst]); a call over the rate waits up to
	// [DefaultCreateMaxWait], then gets ResourceExhausted. See
	// [WithCreateRateLimit].
	CreateRate  float64
	CreateBurst int
	// RelayOptions configure the outbox relay.
	RelayOptions []outbox.Option
	// NoRelay, when set, runs no outbox relay in this server: registrations
	// are committed with their events into the outbox, and another process
	// (a replica with the relay on, or a dedicated relay) publishes them.
	// Several relays on one outbox never publish a row twice at once.
	NoRelay bool
	// DeclareGroups are the queue groups that consume the service's events,
	// declared on Broker at Start before the relay publishes anything
	// ([broker.DeclareGroup]), so that an event published before a group's
	// first member subscribes is kept for it: on RabbitMQ, SNS or Pub/Sub a
	// message published while no queue is bound for the group is dropped.
	// Nil means [DefaultDeclareGroups]. A broker that cannot declare groups
	// (errors.ErrUnsupported) gets a warning; any other failure fails
	// Start.
	DeclareGroups []Group
	// NoDeclareGroups, when set, declares no group at Start.
	NoDeclareGroups bool
	// Metrics, when set, receives the outbox backlog collector
	// (herald_outbox_backlog{outbox="user"}) and is served on /metrics beside
	// the API. Count the broker's traffic by passing a broker wrapped with
	// [metrics.Metrics.Wrap] as Broker.
	Metrics *prometheus.Registry
	// TracerProvider, when set, traces each request and writes its trace
	// context into the events it causes (see [WithTracing]). Trace the
	// broker too by passing one wrapped with [tracing.Wrap] as Broker.
	TracerProvider trace.TracerProvider
}

// Server runs the user service: the API on one port for Connect, gRPC and
// gRPC-Web (HTTP/1.1 and HTTP/2 over cleartext), and the outbox relay that
// publishes its events (unless [Config.NoRelay]). Create one with [NewServer].
type Server struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	started  bool
	db       *gorm.DB
	ownDB    bool
	ln       net.Listener
	http     *http.Server
	relay    *outbox.Relay
	stop     context.CancelFunc
	relayRun chan struct{}
	served   chan struct{}
	inst     *registry.Instance
	backlog  prometheus.Collector
}

// NewServer checks cfg and returns a server that [Server.Start] starts.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Broker == nil {
		return nil, fmt.Errorf("user: %w: Config.Broker is required", broker.ErrInvalidOption)
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = DefaultDatabaseURL
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = DefaultBcryptCost
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RegistryTTL == 0 {
		cfg.RegistryTTL = registry.DefaultTTL
	}
	// Validate the options now rather than at Start.
	if err := WithBcryptCost(cfg.BcryptCost)(&Service{}); err != nil {
		return nil, err
	}
	if err := WithMaxRequestBytes(cfg.MaxRequestBytes)(&Service{}); err != nil {
		return nil, err
	}
	if cfg.CreateRate == 0 {
		cfg.CreateRate = DefaultCreateRate
	}
	if cfg.CreateBurst == 0 {
		cfg.CreateBurst = DefaultCreateBurst
	}
	if err := cfg.rateLimit()(&Service{}); err != nil {
		return nil, err
	}
	if cfg.DeclareGroups == nil {
		cfg.DeclareGroups = DefaultDeclareGroups()
	}
	cfg.DeclareGroups = slices.Clone(cfg.DeclareGroups)
	for _, g := range cfg.DeclareGroups {
		if err := broker.ValidateGroup(g.Topic, g.Queue); err != nil {
			return nil, fmt.Errorf("user: %w: declare group %s: %w", broker.ErrInvalidOption, g, err)
		}
	}
	if cfg.HashConcurrency < 0 {
		return nil, fmt.Errorf("user: %w: hash concurrency must be >= 0, not %d", broker.ErrInvalidOption, cfg.HashConcurrency)
	}
	return &Server{cfg: cfg, log: cfg.Logger}, nil
}

// Start opens and migrates the database, declares the groups that consume
// the service's events ([Config.DeclareGroups]), starts the relay, listens,
// serves, and registers the server. It returns once the server accepts requests;
// ctx bounds the start only. On error, whatever was started is stopped.
func (s *Server) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("user: server already started")
	}
	defer func() {
		if err != nil {
			s.stopLocked(context.WithoutCancel(ctx))
		}
	}()

	s.db, s.ownDB = s.cfg.DB, false
	if s.db == nil {
		if s.db, err = db.Open(ctx, s.cfg.DatabaseURL); err != nil {
			return fmt.Errorf("user: %w", err)
		}
		s.ownDB = true
	}
	if err := Migrate(ctx, s.db); err != nil {
		return err
	}
	// Before the relay publishes what the outbox holds.
	if err := s.declareGroups(ctx); err != nil {
		return err
	}
	relayOpts := append([]outbox.Option{outbox.WithLogger(s.log)}, s.cfg.RelayOptions...)
	if s.relay, err = outbox.NewRelay(s.db, s.cfg.Broker, relayOpts...); err != nil {
		return err
	}
	opts := []Option{
		WithBcryptCost(s.cfg.BcryptCost),
		WithLogger(s.log),
		WithNotify(s.relay.Notify),
		WithMaxRequestBytes(s.cfg.MaxRequestBytes),
		s.cfg.rateLimit(),
	}
	if s.cfg.HashConcurrency > 0 {
		opts = append(opts, WithHashConcurrency(s.cfg.HashConcurrency))
	}
	if s.cfg.TracerProvider != nil {
		opts = append(opts, WithTracing(s.cfg.TracerProvider, nil))
	}
	svc, err := NewService(s.db, opts...)
	if err != nil {
		return err
	}

	var lc net.ListenConfig
	if s.ln, err = lc.Listen(ctx, "tcp", s.cfg.Listen); err != nil {
		return fmt.Errorf("user: listen: %w", err)
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // gRPC without TLS
	handler := svc.Handler()
	if s.cfg.TracerProvider != nil {
		handler = traceHTTP(handler, s.cfg.TracerProvider, tracing.Propagator())
	}
	if s.cfg.Metrics != nil {
		c := metrics.NewBacklogCollector("user", s.relay.Backlog)
		if err := s.cfg.Metrics.Register(c); err != nil {
			return fmt.Errorf("user: metrics: %w", err)
		}
		s.backlog = c
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics.Handler(s.cfg.Metrics))
		mux.Handle("/", handler)
		handler = mux
	}
	s.http = &http.Server{
		Handler:           handler,
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    int(s.cfg.MaxRequestBytes) + 16<<10, // Connect GETs carry the message in the URL
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.served = make(chan struct{})
	go func(srv *http.Server, ln net.Listener, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("user: serve", "err", err)
		}
	}(s.http, s.ln, s.served)

	if !s.cfg.NoRelay {
		relayCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
		s.stop = stop
		s.relayRun = make(chan struct{})
		go func(r *outbox.Relay, done chan struct{}) {
			defer close(done)
			r.Run(relayCtx)
		}(s.relay, s.relayRun)
	}

	if s.cfg.Registry != nil {
		addr := s.cfg.Advertise
		if addr == "" {
			addr = s.ln.Addr().String()
		}
		inst := registry.Instance{
			Service:  ServiceName,
			ID:       "user-" + broker.NewID(),
			Addr:     addr,
			Metadata: map[string]string{"scheme": "http", "api": "herald.user.v1.UserService"},
		}
		if err := s.cfg.Registry.Register(ctx, inst, registry.TTL(s.cfg.RegistryTTL)); err != nil {
			return fmt.Errorf("user: register as %s: %w", ServiceName, err)
		}
		s.inst = &inst
	}
	s.started = true
	s.log.Info("user service listening", "addr", s.ln.Addr().String(), "database", db.Redact(s.cfg.DatabaseURL), "relay", !s.cfg.NoRelay)
	return nil
}

// Addr returns the address the server listens on (host:port), or "" before
// [Server.Start].
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown deregisters the server, stops accepting requests and waits for
// those in flight, stops the relay after one last pass over the outbox, and
// closes the database it opened; all bounded by ctx. What the relay could
// not publish stays in the outbox for the next start. Calls after the first
// return nil.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return nil
	}
	s.started = false
	return s.stopLocked(ctx)
}

func (s *Server) stopLocked(ctx context.Context) error {
	var errs []error
	if s.inst != nil {
		if err := s.cfg.Registry.Deregister(ctx, *s.inst); err != nil {
			errs = append(errs, fmt.Errorf("user: deregister: %w", err))
		}
		s.inst = nil
	}
	if s.http != nil {
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("user: shut down http: %w", err))
			s.http.Close()
		}
		<-s.served
		s.http = nil
	} else if s.ln != nil {
		s.ln.Close()
	}
	if s.stop != nil {
		s.stop()
		select {
		case <-s.relayRun:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("user: stop relay: %w", ctx.Err()))
		}
		s.stop = nil
		// Publish what the last requests committed, if the broker lets us.
		for ctx.Err() == nil {
			n, err := s.relay.Once(ctx)
			if err != nil {
				s.log.Warn("user: final outbox pass", "err", err)
				break
			}
			if n == 0 {
				break
			}
		}
	}
	if s.backlog != nil {
		s.cfg.Metrics.Unregister(s.backlog)
		s.backlog = nil
	}
	if s.ownDB && s.db != nil {
		if sqlDB, err := s.db.DB(); err == nil {
			if err := sqlDB.Close(); err != nil {
				errs = append(errs, fmt.Errorf("user: close database: %w", err))
			}
		}
	}
	s.db = nil
	return errors.Join(errs...)
}

// rateLimit is the Create rate limit option of c (CreateRate < 0: off).
func (c *Config) rateLimit() Option {
	return WithCreateRateLimit(max(c.CreateRate, 0), c.CreateBurst, DefaultCreateMaxWait)
}
