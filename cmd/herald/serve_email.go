package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/herald-dev/herald/internal/dedupestore"
	"github.com/herald-dev/herald/middleware/natsdedupe"
	"github.com/herald-dev/herald/services/email"
	"github.com/herald-dev/herald/tracing"
)

func newServeEmailCmd() *cobra.Command {
	var (
		cfg          email.Config
		brokerURL    string
		passwordFile string
		dedupe       string
		database     string
		retention    time.Duration
		grace        time.Duration
		metricsAddr  string
		traces       traceFlags
	)
	cmd := &cobra.Command{
		Use:   "email",
		Short: "Run the email service: one welcome mail per user.registered event",
		Long: `Subscribes to user.registered in the queue group "email" (replicas share the
events) and sends each new user a welcome mail through the SMTP server at --smtp.

A mail is sent once per event: the ID of each event whose mail was sent is
recorded, and a redelivered event whose ID is there sends nothing. A server
that answers 4xx or cannot be reached is retried with backoff, up to
--max-attempts deliveries; a mail it refuses for good (5xx, such as 550 for an
unknown recipient) and an event that cannot be decoded go to the dead-letter
topic user.registered.dlq.

Replicas: run as many as you like against one broker; each event goes to one
of them, and a redelivery (a replica died, or its acknowledgement was lost)
may go to another. That is why the records must be shared, and by default
they are: --dedupe broker keeps them on the broker's own engine, which every
replica already reaches — a JetStream KV bucket (herald_dedupe_email, on as
many servers as the broker URL's replicas=) on nats://, keys
(herald:dedupe:email:<event-id>) on redis://. Done records are
kept for --dedupe-retention. RabbitMQ, Kafka, Pub/Sub, SQS and the HTTP broker
have no such place: there the command refuses to start until --dedupe names a
database every replica shares (mysql://, postgres://). --dedupe sqlite://FILE
is a file of this process: right for a single replica only.

--smtp takes smtp://host:port (STARTTLS when offered; ?starttls=always|never),
smtps://host:port (TLS from the first byte) and user:password@ for AUTH PLAIN.
Put the password in HERALD_SMTP or in --smtp-password-file rather than on the
command line; it is never printed or logged.

Stops gracefully on Ctrl-C or SIGTERM: mails in flight finish within --grace.`,
		Example: `  herald serve email --broker nats://127.0.0.1:4222 --smtp smtp://127.0.0.1:2525
  HERALD_SMTP='smtps://herald:secret@mail.example.com:465' herald serve email --broker amqp://mq:5672/ --dedupe 'postgres://herald:secret@db:5432/email'
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
			spec, err := dedupeSpec(cmd, dedupe, database, retention)
			if err != nil {
				return err
			}
			b, err := openBroker(ctx, brokerURL)
			if err != nil {
				return fmt.Errorf("--broker %s: %w", redactURL(brokerURL), err)
			}
			defer closeWithin(grace, "broker", b.Close)
			cfg.Broker = b
			records, err := dedupestore.Open(ctx, spec, b, dedupestore.Config{Name: email.Queue, Retention: dedupeRetention(retention)})
			if errors.Is(err, dedupestore.ErrUnsupported) {
				return fmt.Errorf("--dedupe broker: the %s broker has no place for the sent-mail records that every replica could share; "+
					"pass a database they all reach, --dedupe postgres://… or mysql://… (or sqlite://FILE for a single replica)", brokerScheme(brokerURL))
			}
			if err != nil {
				return fmt.Errorf("--dedupe %s: %w", redactURL(spec), err)
			}
			defer records.Close()
			cfg.Dedupe = records
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
			shared := "shared by every replica"
			if !records.Shared {
				shared = "this replica's own"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "email service: queue %q on user.registered, %d at a time\n  smtp     %s\n  from     %s\n  records  %s (%s)\n  broker   %s\n",
				email.Queue, cfg.Concurrency, redactURL(cfg.SMTPURL), cfg.From, records.Where, shared, redactURL(brokerURL))
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
	f.StringVar(&dedupe, "dedupe", dedupestore.Broker, "where the sent-mail records live: broker (on the broker's engine, shared by every replica: NATS KV, Redis keys), or a database URL, mysql://…, postgres://…, sqlite://FILE (one replica)")
	f.DurationVar(&retention, "dedupe-retention", natsdedupe.DefaultRetention, "how long --dedupe broker keeps the record of a sent mail (0: for good)")
	f.StringVar(&database, "database", "", "the same as --dedupe URL (its older spelling, kept for existing scripts)")
	f.IntVar(&cfg.Concurrency, "concurrency", email.DefaultConcurrency, "how many mails may be sent at once")
	f.IntVar(&cfg.MaxAttempts, "max-attempts", email.DefaultMaxAttempts, "deliveries of an event before it is dead-lettered")
	f.DurationVar(&cfg.SendTimeout, "send-timeout", email.DefaultSendTimeout, "time limit of one SMTP exchange")
	f.DurationVar(&grace, "grace", 15*time.Second, "how long a graceful shutdown may take")
	f.StringVar(&metricsAddr, "metrics-listen", "", "address serving Prometheus metrics on /metrics (empty: none)")
	traces.add(f)
	return cmd
}

// dedupeSpec returns where the sent-mail records live, from --dedupe and
// its older spelling --database.
func dedupeSpec(cmd *cobra.Command, dedupe, database string, retention time.Duration) (string, error) {
	spec := dedupe
	if database != "" {
		if cmd.Flags().Changed("dedupe") && dedupe != database {
			return "", fmt.Errorf("--dedupe %s and --database %s: give one (--database is the older spelling of --dedupe URL)",
				redactURL(dedupe), redactURL(database))
		}
		spec = database
	}
	if spec != dedupestore.Broker && cmd.Flags().Changed("dedupe-retention") {
		return "", fmt.Errorf("--dedupe-retention applies to --dedupe broker; a database keeps the records until they are deleted")
	}
	if retention < 0 {
		return "", fmt.Errorf("--dedupe-retention %v: want 0 (for good) or a duration", retention)
	}
	return spec, nil
}

// dedupeRetention turns --dedupe-retention (0: for good) into the store's.
func dedupeRetention(d time.Duration) time.Duration {
	if d == 0 {
		return dedupestore.Forever
	}
	return d
}

// brokerScheme names the broker of rawURL for a message: its scheme.
func brokerScheme(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.Scheme != "" {
		return u.Scheme + "://"
	}
	return "given"
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
