package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/herald-dev/herald/services/email"
	"github.com/herald-dev/herald/tracing"
)

func newServeEmailCmd() *cobra.Command {
	var (
		cfg          email.Config
		brokerURL    string
		passwordFile string
		grace        time.Duration
		metricsAddr  string
		traces       traceFlags
	)
	cmd := &cobra.Command{
		Use:   "email",
		Short: "Run the email service: one welcome mail per user.registered event",
		Long: `Subscribes to user.registered in the queue group "email" (replicas share the
events) and sends each new user a welcome mail through the SMTP server at --smtp.

A mail is sent once per event: the event IDs of the mails sent are recorded in
--database, so a redelivered event sends nothing. A server that answers 4xx or
cannot be reached is retried with backoff, up to --max-attempts deliveries; a
mail it refuses for good (5xx, such as 550 for an unknown recipient) and an
event that cannot be decoded go to the dead-letter topic user.registered.dlq.

--smtp takes smtp://host:port (STARTTLS when offered; ?starttls=always|never),
smtps://host:port (TLS from the first byte) and user:password@ for AUTH PLAIN.
Put the password in HERALD_SMTP or in --smtp-password-file rather than on the
command line; it is never printed or logged.

Stops gracefully on Ctrl-C or SIGTERM: mails in flight finish within --grace.`,
		Example: `  herald serve email --broker nats://127.0.0.1:4222 --smtp smtp://127.0.0.1:2525
  HERALD_SMTP='smtps://herald:secret@mail.example.com:465' herald serve email --database 'postgres://herald:secret@db:5432/email'
  herald serve email --smtp smtp://herald@mail.example.com:587?starttls=always --smtp-password-file /run/secrets/smtp`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log := slog.New(tracing.LogHandler(slog.Default().Handler()))
			if passwordFile != "" {
				withPassword, err := smtpWithPasswordFile(cfg.SMTPURL, passwordFile)
				if err != nil {
					return err
				}
				cfg.SMTPURL = withPassword
			}
			b, err := openBroker(ctx, brokerURL)
			if err != nil {
				return fmt.Errorf("--broker %s: %w", redactURL(brokerURL), err)
			}
			defer closeWithin(grace, "broker", b.Close)
			cfg.Broker = b
			tp, stopTracing, err := traces.setup(cmd, "herald-email")
			if err != nil {
				return err
			}
			defer stopTracing()
			if tp != nil {
				cfg.Broker, cfg.TracerProvider = tracing.Wrap(b, tp, nil), tp
			}
			if metricsAddr != "" {
				var reg *prometheus.Registry
				if cfg.Broker, reg, err = withMetrics(cfg.Broker); err != nil {
					return err
				}
				addr, stop, err := serveMetrics(ctx, metricsAddr, reg)
				if err != nil {
					return err
				}
				defer closeWithin(grace, "metrics listener", stop)
				fmt.Fprintf(cmd.OutOrStdout(), "metrics on http://%s/metrics\n", addr)
			}
			cfg.Logger = log
			svc, err := email.New(cfg)
			if err != nil {
				return err
			}
			if err := svc.Start(ctx); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "email service: queue %q on user.registered, %d at a time\n  smtp     %s\n  from     %s\n  database %s\n  broker   %s\n",
				email.Queue, cfg.Concurrency, redactURL(cfg.SMTPURL), cfg.From, redactURL(cfg.Database), redactURL(brokerURL))
			<-ctx.Done()
			log.Info("email service shutting down")
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
			defer cancel()
			return svc.Stop(sctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&brokerURL, "broker", "nats://127.0.0.1:4222", "broker URL the events come from")
	f.StringVar(&cfg.SMTPURL, "smtp", "smtp://127.0.0.1:2525", "SMTP server URL: smtp://[user[:password]@]host:port or smtps://…")
	f.StringVar(&passwordFile, "smtp-password-file", "", "file holding the SMTP password (its first line), instead of one in --smtp")
	f.StringVar(&cfg.From, "from", email.DefaultFrom, "sender of the welcome mails")
	f.StringVar(&cfg.Database, "database", "sqlite://.herald/email.db", "database of the sent-mail records: sqlite://…, mysql://…, postgres://…")
	f.IntVar(&cfg.Concurrency, "concurrency", email.DefaultConcurrency, "how many mails may be sent at once")
	f.IntVar(&cfg.MaxAttempts, "max-attempts", email.DefaultMaxAttempts, "deliveries of an event before it is dead-lettered")
	f.DurationVar(&cfg.SendTimeout, "send-timeout", email.DefaultSendTimeout, "time limit of one SMTP exchange")
	f.DurationVar(&grace, "grace", 15*time.Second, "how long a graceful shutdown may take")
	f.StringVar(&metricsAddr, "metrics-listen", "", "address serving Prometheus metrics on /metrics (empty: none)")
	traces.add(f)
	return cmd
}

// smtpWithPasswordFile returns rawURL with the password read from path.
func smtpWithPasswordFile(rawURL, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--smtp-password-file: %w", err)
	}
	password, _, _ := strings.Cut(string(data), "\n")
	password = strings.TrimRight(password, "\r")
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("--smtp %s: not a URL", redactURL(rawURL))
	}
	if u.User == nil || u.User.Username() == "" {
		return "", fmt.Errorf("--smtp-password-file needs a user name in --smtp (smtp://user@host:port)")
	}
	if _, has := u.User.Password(); has {
		return "", fmt.Errorf("--smtp-password-file and a password in --smtp: give one")
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String(), nil
}
