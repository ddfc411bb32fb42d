// Package email is Herald's email service: it consumes user.registered
// events and sends each new user one welcome mail through an SMTP server.
//
// # Delivery semantics
//
// The service joins the queue group "email" on [events.TopicUserRegistered],
// so replicas share the events and each event goes to one of them.
//
//   - An event that does not decode is dead-lettered at once
//     ([broker.Permanent]): no retry can fix it.
//   - A mail the SMTP server refuses for good (a 5xx answer to the recipient
//     or to the data, e.g. 550 "no such user") is dead-lettered at once.
//   - Every other failure (4xx answers, the server down, a timeout) is
//     returned, so the broker redelivers the event with backoff, up to
//     [Config.MaxAttempts] times, and then dead-letters it.
//   - Sending is idempotent: a sent-mail record keyed by the event ID is kept
//     in a [middleware.DedupeStore] ([middleware.Dedupe]) that every replica
//     shares (see Replicas below), so a redelivered event, on this replica
//     or another, is acknowledged without a second mail. The one gap is the
//     idempotent consumer's own: a process that dies after the server
//     accepted the mail and before the record is written sends that mail
//     again, after the record's claim lapses. Every send of one event
//     carries the same Message-ID.
//
// # Replicas: where the records live
//
// Replicas share the events, and a redelivery may go to any of them: the
// replica that sent the mail died before acknowledging, or its
// acknowledgement was lost. The record stops the second mail only if the
// replica that gets the redelivery sees it, so every replica must use the
// same records. [Config.Dedupe] takes any store; `herald serve email` gives
// it, by default (--dedupe broker), a store on the engine of the broker the
// replicas already share (package internal/dedupestore):
//
//   - NATS: the JetStream KV bucket "herald_dedupe_email"
//     ([github.com/herald-dev/herald/middleware/natsdedupe]);
//   - Redis: the keys "herald:dedupe:email:<event ID>"
//     ([github.com/herald-dev/herald/middleware/redisdedupe]);
//
// each record kept 30 days after its mail (--dedupe-retention). RabbitMQ,
// Kafka, Pub/Sub, SQS and the HTTP broker have no such place: there the
// command refuses to start until --dedupe names a database the replicas
// share (mysql://, postgres://). A sqlite:// file ([Config.Database], or
// --dedupe sqlite://…) belongs to one process: right for a single replica,
// such as the one `herald up` runs, and wrong for two, as
// TestReplicasShareSentMailRecords shows.
//
// # Secrets
//
// The SMTP password comes in the URL; it is used for AUTH only and every
// URL the service prints or logs is redacted.
package email

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"gorm.io/gorm"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/events"
	"github.com/herald-dev/herald/internal/db"
	"github.com/herald-dev/herald/middleware"
	"github.com/herald-dev/herald/tracing"
)

// Queue is the queue group the email service joins, on
// events.TopicUserRegistered: [events.QueueEmail], which the user service
// declares at start.
const Queue = events.QueueEmail

// Defaults of [Config].
const (
	DefaultFrom        = "Herald <welcome@herald.local>"
	DefaultConcurrency = 8
	DefaultMaxAttempts = 10
	DefaultSendTimeout = 30 * time.Second
)

// DefaultBackoff spaces the redeliveries of an event whose mail failed for a
// reason that may pass: 1s, 2s, 4s … up to a minute, ±20%.
var DefaultBackoff = broker.Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 0.2}

// Config configures a [Service]. Broker and SMTPURL are required, and one
// of Database and Dedupe.
type Config struct {
	// Broker delivers the events.
	Broker broker.Broker
	// SMTPURL is the mail server: smtp://host:port, smtps://host:port,
	// with optional user:password (see [NewMailer]).
	SMTPURL string
	// From is the sender, "Name <address>"; [DefaultFrom] when empty.
	From string
	// Database is the URL of the database of sent-mail records
	// (sqlite://…, mysql://…, postgres://…). The service opens it on Start
	// and closes it on Stop. Replicas must share it: a sqlite:// file is
	// for a single replica (see "Replicas" above).
	Database string
	// Dedupe, when set, keeps the sent-mail records instead of Database;
	// the caller opens and closes it. Replicas must share it.
	Dedupe middleware.DedupeStore
	// Concurrency is how many mails may be sent at once
	// ([DefaultConcurrency] when 0).
	Concurrency int
	// MaxAttempts is how many deliveries an event gets before it is
	// dead-lettered ([DefaultMaxAttempts] when 0).
	MaxAttempts int
	// Backoff spaces redeliveries; [DefaultBackoff] when zero.
	Backoff broker.Backoff
	// SendTimeout bounds one SMTP exchange ([DefaultSendTimeout] when 0).
	SendTimeout time.Duration
	// MailerOptions configure the SMTP client (TLS roots, EHLO name).
	MailerOptions []MailerOption
	// Logger receives the service's log; discard when nil. It never sees
	// the SMTP password.
	Logger *slog.Logger
	// Now is the clock of the mails' Date header; time.Now when nil.
	Now func() time.Time
	// TracerProvider, when set, traces each event handled (span "email
	// welcome") and each SMTP exchange (span "smtp send"), as children of
	// the delivery's span (see [tracing.Wrap]).
	TracerProvider trace.TracerProvider
}

// Service is the email service. Start it once; Stop it once.
type Service struct {
	cfg    Config
	from   *mail.Address
	mailer *Mailer
	log    *slog.Logger
	tracer trace.Tracer

	mu      sync.Mutex
	sub     broker.Subscription
	gdb     *gorm.DB // opened by Start from Config.Database
	started bool
	stopped bool
}

// New validates cfg and returns a service ready to Start.
func New(cfg Config) (*Service, error) {
	if cfg.Broker == nil {
		return nil, errors.New("email: config: no broker")
	}
	if cfg.SMTPURL == "" {
		return nil, errors.New("email: config: no SMTP URL")
	}
	if cfg.Database == "" && cfg.Dedupe == nil {
		return nil, errors.New("email: config: no database for the sent-mail records")
	}
	if cfg.From == "" {
		cfg.From = DefaultFrom
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("email: config: from %q: %w", cfg.From, err)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Concurrency < 0 {
		return nil, fmt.Errorf("email: config: concurrency %d", cfg.Concurrency)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff == (broker.Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	mopts := append([]MailerOption{WithMailerLogger(cfg.Logger)}, cfg.MailerOptions...)
	m, err := NewMailer(cfg.SMTPURL, mopts...)
	if err != nil {
		return nil, err
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return &Service{cfg: cfg, from: from, mailer: m, log: cfg.Logger, tracer: tp.Tracer(tracing.ScopeName)}, nil
}

// Start opens the sent-mail records and subscribes. ctx bounds the set-up
// only; the service runs until Stop.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("email: already started")
	}
	store := s.cfg.Dedupe
	if store == nil {
		g, err := db.Open(ctx, s.cfg.Database)
		if err != nil {
			return fmt.Errorf("email: sent-mail database: %w", err)
		}
		sqlStore, err := middleware.NewSQLDedupeStore(ctx, g)
		if err != nil {
			closeDB(g)
			return fmt.Errorf("email: sent-mail database %s: %w", db.Redact(s.cfg.Database), err)
		}
		s.gdb, store = g, sqlStore
	}
	dedupe := middleware.Dedupe{
		Store: store,
		// A claim outlives the longest send, so that only a dead holder's
		// claim is ever taken over.
		TTL:    2*s.cfg.SendTimeout + 10*time.Second,
		Logger: s.log,
	}
	sub, err := s.cfg.Broker.Subscribe(ctx, events.TopicUserRegistered, dedupe.Middleware(s.handle),
		broker.Queue(Queue),
		broker.Concurrency(s.cfg.Concurrency),
		broker.MaxAttempts(s.cfg.MaxAttempts),
		broker.RetryBackoff(s.cfg.Backoff),
		broker.AckWait(s.cfg.SendTimeout+30*time.Second),
		broker.WithLogger(s.log),
	)
	if err != nil {
		if s.gdb != nil {
			closeDB(s.gdb)
			s.gdb = nil
		}
		return fmt.Errorf("email: subscribe: %w", err)
	}
	s.sub, s.started = sub, true
	s.log.Info("email service started", "topic", events.TopicUserRegistered, "queue", Queue,
		"smtp", s.mailer.String(), "from", s.from.String(), "concurrency", s.cfg.Concurrency)
	return nil
}

// Stop unsubscribes, waits for the mails in flight (bounded by ctx) and
// closes the database it opened. Calls after the first return nil.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.stopped {
		return nil
	}
	s.stopped = true
	var errs []error
	if err := s.sub.Unsubscribe(ctx); err != nil {
		errs = append(errs, fmt.Errorf("unsubscribe: %w", err))
	}
	if s.gdb != nil {
		if err := closeDB(s.gdb); err != nil {
			errs = append(errs, fmt.Errorf("close database: %w", err))
		}
	}
	s.log.Info("email service stopped")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("email: stop: %w", err)
	}
	return nil
}

// handle sends the welcome mail of one user.registered event.
func (s *Service) handle(ctx context.Context, m *broker.Message) (err error) {
	ctx, span := s.tracer.Start(ctx, "email welcome", trace.WithAttributes(tracing.AttrMessageID.String(m.ID)))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "welcome mail not sent")
		}
		span.End()
	}()
	u, err := events.DecodeUserRegistered(m)
	if err != nil {
		s.log.WarnContext(ctx, "email: undecodable event dead-lettered", "msg_id", m.ID, "err", err)
		return broker.Permanent(err)
	}
	w := NewWelcome(s.from, u, m.ID, s.cfg.Now())
	raw, err := w.Bytes()
	if err != nil {
		return broker.Permanent(err)
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	defer cancel()
	start := time.Now()
	sctx, send := s.tracer.Start(sctx, "smtp send", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("server.address", s.mailer.addr)))
	err = s.mailer.Send(sctx, s.from.Address, []string{u.Email}, raw)
	if err != nil {
		send.RecordError(err)
		send.SetStatus(codes.Error, "smtp send failed")
	}
	send.End()
	switch {
	case errors.Is(err, ErrRejected):
		s.log.WarnContext(ctx, "email: welcome mail rejected; dead-lettered", "msg_id", m.ID, "attempt", m.Attempt, "err", err)
		return broker.Permanent(err)
	case err != nil:
		s.log.WarnContext(ctx, "email: welcome mail not sent; will retry", "msg_id", m.ID, "attempt", m.Attempt, "err", err)
		return err
	}
	s.log.InfoContext(ctx, "email: welcome mail sent", "msg_id", m.ID, "attempt", m.Attempt,
		"user_id", u.ID, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func closeDB(g *gorm.DB) error {
	sqlDB, err := g.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}
