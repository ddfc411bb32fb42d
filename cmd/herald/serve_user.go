package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-dev/herald/registry"
	"github.com/herald-dev/herald/services/user"
	"github.com/herald-dev/herald/tracing"
)

func newServeUserCmd() *cobra.Command {
	var (
		cfg         user.Config
		brokerURL   string
		registryURL string
		grace       time.Duration
		dbPassFile  string
		createRate  float64
		traces      traceFlags
		relay       bool
		declare     []string
	)
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Run the user service: register and read users, publish user.registered",
		Long: `Serves the herald.user.v1.UserService API on one port for Connect (curl-able JSON),
gRPC and gRPC-Web, stores users in --database, publishes each registration's
user.registered event to --broker through a transactional outbox, and registers
itself as herald.user in --registry (an empty --registry registers nowhere).

Secrets: put the database password in HERALD_DATABASE or in
--database-password-file rather than on the command line; printed URLs are redacted.

Create is rate-limited per client address (--create-rate, --create-burst).

At start, before publishing anything, it declares on the broker the queue groups
that consume its events (--declare-group topic:group, by default the email
service's, user.registered:email), so that an event published before the email
service first subscribes is kept for it: RabbitMQ, SNS and Pub/Sub drop a message
published while no queue is bound for the group. A broker that cannot declare
groups gets a warning; --declare-group '' declares none.

The outbox relay runs in the service unless --relay=false: then registrations are
committed with their events into the outbox, and another replica with the relay
on publishes them (several relays never publish a row twice at once).

Stops gracefully on Ctrl-C or SIGTERM: it deregisters, finishes the requests in
flight and publishes what they committed, within --grace.`,
		Example: `  herald serve user --listen 127.0.0.1:8081 --database sqlite://.herald/users.db
  herald serve user --database 'postgres://herald@db:5432/herald' --database-password-file /run/secrets/db \
    --broker nats://nats:4222 --registry nats://nats:4222

  curl -s -H 'Content-Type: application/json' \
    -d '{"name":"Ada","email":"ada@example.com","password":"correct horse"}' \
    http://127.0.0.1:8081/herald.user.v1.UserService/Create`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log := slog.New(tracing.LogHandler(slog.Default().Handler()))
			var err error
			if dbPassFile != "" {
				withPassword, err := withPasswordFile("database", cfg.DatabaseURL, "database-password-file", dbPassFile)
				if err != nil {
					return err
				}
				cfg.DatabaseURL = withPassword
			}
			cfg.CreateRate = createRate
			cfg.NoRelay = !relay
			if cfg.DeclareGroups, err = parseDeclareGroups(declare); err != nil {
				return err
			}
			cfg.NoDeclareGroups = len(cfg.DeclareGroups) == 0
			if createRate == 0 {
				cfg.CreateRate = -1 // off
			}
			b, err := openBroker(ctx, brokerURL)
			if err != nil {
				return fmt.Errorf("--broker %s: %w", redactURL(brokerURL), err)
			}
			defer closeWithin(grace, "broker", b.Close)
			if registryURL != "" {
				var reg registry.Registry
				if reg, err = openRegistry(ctx, registryURL); err != nil {
					return fmt.Errorf("--registry %s: %w", redactURL(registryURL), err)
				}
				defer closeWithin(grace, "registry", reg.Close)
				cfg.Registry = reg
			}
			tp, stopTracing, err := traces.setup(cmd, "herald-user")
			if err != nil {
				return err
			}
			defer stopTracing()
			traced := b
			if tp != nil {
				traced, cfg.TracerProvider = tracing.Wrap(b, tp, nil), tp
			}
			// Counted on /metrics beside the API, with the outbox backlog.
			if cfg.Broker, cfg.Metrics, err = withMetrics(traced); err != nil {
				return err
			}
			cfg.Logger = log
			srv, err := user.NewServer(cfg)
			if err != nil {
				return err
			}
			if err := srv.Start(ctx); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user service (%s) listening on %s (metrics on /metrics)\n  database %s\n  broker   %s\n  registry %s\n  relay    %s\n  declared %s\n",
				user.ServiceName, srv.Addr(), redactURL(cfg.DatabaseURL), redactURL(brokerURL), orNone(redactURL(registryURL)), onOff(relay), groupsOrNone(cfg.DeclareGroups))
			<-ctx.Done()
			log.Info("user service shutting down")
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
			defer cancel()
			return srv.Shutdown(sctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", user.DefaultListen, "address to listen on (host:port; port 0 picks a free one)")
	f.StringVar(&cfg.Advertise, "advertise", "", "host:port to register, when --listen is not reachable as is (default: the listening address)")
	f.StringVar(&cfg.DatabaseURL, "database", user.DefaultDatabaseURL, "database URL: sqlite:///abs/path.db, sqlite://relative.db, mysql://user:pass@host:3306/db, postgres://user:pass@host:5432/db")
	f.StringVar(&brokerURL, "broker", "nats://127.0.0.1:4222", "broker URL the events are published to")
	f.StringVar(&registryURL, "registry", "nats://127.0.0.1:4222", "registry URL to register in as herald.user (empty: none)")
	f.StringVar(&dbPassFile, "database-password-file", "", "file holding the database password (its first line), instead of one in --database")
	f.Float64Var(&createRate, "create-rate", user.DefaultCreateRate, "registrations per second allowed per client address (0: no limit); calls over it wait up to 2s, then get ResourceExhausted")
	f.IntVar(&cfg.CreateBurst, "create-burst", user.DefaultCreateBurst, "registrations one client address may make at once")
	f.IntVar(&cfg.BcryptCost, "bcrypt-cost", user.DefaultBcryptCost, "bcrypt cost of password hashes (4 to 31)")
	f.Int64Var(&cfg.MaxRequestBytes, "max-request-bytes", user.DefaultMaxRequestBytes, "largest request message accepted")
	f.DurationVar(&grace, "grace", 10*time.Second, "how long a graceful shutdown may take")
	f.BoolVar(&relay, "relay", true, "run the outbox relay that publishes the events; --relay=false leaves them in the outbox for another replica or a relay run elsewhere")
	f.StringSliceVar(&declare, "declare-group", groupStrings(user.DefaultDeclareGroups()), "queue group that consumes the service's events, as topic:group, declared on the broker at start so that nothing published before its first member joins is lost (repeat the flag or separate with commas; '' declares none)")
	traces.add(f)
	return cmd
}

// parseDeclareGroups reads the values of --declare-group; none (the flag
// set to an empty string) is an empty list.
func parseDeclareGroups(vals []string) ([]user.Group, error) {
	gs := []user.Group{}
	for _, v := range vals {
		g, err := user.ParseGroup(v)
		if err != nil {
			return nil, fmt.Errorf("--declare-group %q: %w", v, err)
		}
		gs = append(gs, g)
	}
	return gs, nil
}

// groupStrings returns gs as "topic:group" strings.
func groupStrings(gs []user.Group) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.String()
	}
	return out
}

func groupsOrNone(gs []user.Group) string {
	if len(gs) == 0 {
		return "(none)"
	}
	return strings.Join(groupStrings(gs), ", ")
}

// closeWithin calls closeFn with a context bounded by d, logging a failure.
func closeWithin(d time.Duration, what string, closeFn func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := closeFn(ctx); err != nil {
		slog.Warn("close "+what, "err", err)
	}
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off (--relay=false: events stay in the outbox for another relay)"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
