package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-dev/herald/internal/system"
	"github.com/herald-dev/herald/services/user"
	"github.com/herald-dev/herald/tracing"
)

// upConfig is what `herald up` runs with.
type upConfig struct {
	dataDir       string
	natsListen    string
	smtpListen    string
	userListen    string
	brokerURL     string
	registryURL   string
	databaseURL   string
	emailDatabase string
	smtpURL       string
	bcryptCost    int
	createRate    float64
	createBurst   int
	grace         time.Duration
	adminListen   string
	traces        traceFlags
}

func newUpCmd() *cobra.Command {
	var c upConfig
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole system in one process on embedded defaults",
		Long: `Runs everything Herald needs in this one process, with its data under --data-dir:

  broker    NATS JetStream, embedded, listening on --nats-listen (data in <data-dir>/nats)
  registry  a JetStream KV bucket on that same server
  user      the user service on --user-listen (Connect, gRPC, gRPC-Web), users in SQLite
  email     the email service (queue group "email"), sent-mail records in SQLite
  smtp      an SMTP sink on --smtp-listen that keeps every mail in <data-dir>/mailbox
  console   the web console on http://<admin-listen>/ and Prometheus metrics on /metrics

Tracing is off by default; --trace-exporter stdout prints each span as JSON,
--trace-exporter otlp sends them to an OpenTelemetry collector (--otlp-endpoint).
One registration is one trace: the request, the outbox, the broker, the email
handler and the SMTP send. Log lines written inside a span carry its trace_id.

Any part can point at a real server instead: --broker, --registry, --database,
--email-database and --smtp take URLs. Ctrl-C stops everything gracefully; data
stays in --data-dir for the next run.

herald up runs one replica of each service, so its sent-mail records stay in
its data directory (<data-dir>/email.db) whatever the broker. To run several
email replicas, run herald serve email: its replicas share their records on
the broker by default.`,
		Example: `  herald up
  herald up --data-dir /tmp/h --nats-listen 127.0.0.1:14222 --smtp-listen 127.0.0.1:12525
  herald up --broker mem://            # no NATS at all (the CLI then needs --addr)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUp(cmd, c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.dataDir, "data-dir", ".herald", "directory of everything the embedded parts keep")
	f.StringVar(&c.natsListen, "nats-listen", "127.0.0.1:4222", "address of the embedded NATS server (used when --broker is empty)")
	f.StringVar(&c.smtpListen, "smtp-listen", "127.0.0.1:2525", "address of the embedded SMTP sink (used when --smtp is empty)")
	f.StringVar(&c.userListen, "user-listen", "127.0.0.1:8080", "address of the user service")
	f.StringVar(&c.brokerURL, "broker", "", "broker URL (empty: the embedded NATS JetStream server)")
	f.StringVar(&c.registryURL, "registry", "", "registry URL (empty: NATS KV on the embedded server, or mem:// without one)")
	f.StringVar(&c.databaseURL, "database", "", "user database URL (empty: sqlite://<data-dir>/users.db)")
	f.StringVar(&c.emailDatabase, "email-database", "", "sent-mail database URL (empty: sqlite://<data-dir>/email.db)")
	f.StringVar(&c.smtpURL, "smtp", "", "SMTP server URL, smtp:// or smtps:// (empty: the embedded sink)")
	f.IntVar(&c.bcryptCost, "bcrypt-cost", user.DefaultBcryptCost, "bcrypt cost of password hashes (4 to 31)")
	f.Float64Var(&c.createRate, "create-rate", user.DefaultCreateRate, "registrations per second allowed per client address (0: no limit); calls over it wait up to 2s, then get ResourceExhausted")
	f.IntVar(&c.createBurst, "create-burst", user.DefaultCreateBurst, "registrations one client address may make at once")
	f.DurationVar(&c.grace, "grace", system.DefaultGrace, "how long shutting down may take")
	c.traces.add(f)
	f.StringVar(&c.adminListen, "admin-listen", "127.0.0.1:9090", "address of the web console and /metrics (empty: none)")
	return cmd
}

// runUp starts the system, prints where each part listens, waits for
// Ctrl-C, and stops it.
func runUp(cmd *cobra.Command, c upConfig) error {
	ctx := cmd.Context()
	tp, stopTracing, err := c.traces.setup(cmd, "herald") // nil tp: no spans, nothing wrapped
	if err != nil {
		return err
	}
	defer stopTracing()
	s, err := system.Start(ctx, system.Config{
		DataDir: c.dataDir, NATSListen: c.natsListen, SMTPListen: c.smtpListen, UserListen: c.userListen,
		BrokerURL: c.brokerURL, RegistryURL: c.registryURL, DatabaseURL: c.databaseURL,
		EmailDatabaseURL: c.emailDatabase, SMTPURL: c.smtpURL, BcryptCost: c.bcryptCost,
		CreateRate: upCreateRate(c.createRate), CreateBurst: c.createBurst,
		OpenBroker: openBroker, OpenRegistry: openRegistry, Logger: slog.New(tracing.LogHandler(slog.Default().Handler())),
		AdminListen: c.adminListen, TracerProvider: tp,
	})
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "herald is up; data in %s\n", c.dataDir)
	if s.NATSDataDir != "" {
		fmt.Fprintf(out, "  broker    %s  (embedded NATS JetStream, data %s)\n", s.BrokerURL, s.NATSDataDir)
	} else {
		fmt.Fprintf(out, "  broker    %s\n", redactURL(s.BrokerURL))
	}
	fmt.Fprintf(out, "  registry  %s\n", redactURL(s.RegistryURL))
	fmt.Fprintf(out, "  user      http://%s  (%s: Connect, gRPC, gRPC-Web)\n", s.UserAddr, user.ServiceName)
	fmt.Fprintf(out, "  email     queue group \"email\" on %s\n", "user.registered")
	if s.MailboxDir != "" {
		fmt.Fprintf(out, "  smtp      %s  (sink, mailbox %s)\n", s.SMTPURL, s.MailboxDir)
	} else {
		fmt.Fprintf(out, "  smtp      %s\n", redactURL(s.SMTPURL))
	}
	if s.AdminAddr != "" {
		fmt.Fprintf(out, "  console   http://%s/  (metrics on /metrics)\n", s.AdminAddr)
	}
	fmt.Fprintf(out, "\nIn another terminal:\n  herald users register --name \"Ada Lovelace\" --email ada@example.com\n  herald mails list\n\nCtrl-C stops.\n")
	<-ctx.Done()
	fmt.Fprintln(out, "herald: shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.grace)
	defer cancel()
	return s.Stop(sctx)
}

// upCreateRate maps --create-rate to [system.Config.CreateRate]: 0 there
// means the default, so the flag's "0: no limit" becomes negative.
func upCreateRate(r float64) float64 {
	if r == 0 {
		return -1
	}
	return r
}
