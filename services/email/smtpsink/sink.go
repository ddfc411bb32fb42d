// Package smtpsink is an SMTP server that accepts mail and keeps it in a
// local mailbox (a Maildir, see package mailbox) instead of relaying it: the
// mail server of `herald up` and of the tests, so that welcome mails can be
// read with `herald mails list` without sending anything anywhere.
//
// It is built on github.com/emersion/go-smtp. By default it accepts every
// recipient; [WithRecipientCheck] can refuse some (to test how a sender
// handles 4xx and 5xx answers), [WithAuth] can require a login, and
// [WithTLS] / [WithImplicitTLS] offer STARTTLS or speak TLS from the first
// byte. Messages are bounded by [WithMaxMessageBytes] and recipients by
// [WithMaxRecipients].
package smtpsink

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/herald-dev/herald/services/email/mailbox"
)

// Defaults.
const (
	DefaultMaxMessageBytes = 10 << 20
	DefaultMaxRecipients   = 50
	DefaultDomain          = "herald.local"
)

type config struct {
	maxBytes    int64
	maxRcpts    int
	domain      string
	tls         *tls.Config
	implicitTLS bool
	user, pass  string
	insecure    bool
	check       func(rcpt string) error
	log         *slog.Logger
}

// Option configures [Start].
type Option func(*config) error

// WithMaxMessageBytes bounds a message (default [DefaultMaxMessageBytes]);
// a larger one is refused with 552 and not kept.
func WithMaxMessageBytes(n int64) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("smtpsink: max message bytes must be >= 1, not %d", n)
		}
		c.maxBytes = n
		return nil
	}
}

// WithMaxRecipients bounds the recipients of one message (default
// [DefaultMaxRecipients]).
func WithMaxRecipients(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("smtpsink: max recipients must be >= 1, not %d", n)
		}
		c.maxRcpts = n
		return nil
	}
}

// WithDomain sets the name the server greets with (default
// [DefaultDomain]).
func WithDomain(d string) Option {
	return func(c *config) error {
		if d == "" || strings.ContainsAny(d, " \r\n") {
			return fmt.Errorf("smtpsink: invalid domain %q", d)
		}
		c.domain = d
		return nil
	}
}

// WithTLS offers STARTTLS with cfg.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil {
			return errors.New("smtpsink: nil TLS config")
		}
		c.tls, c.implicitTLS = cfg, false
		return nil
	}
}

// WithImplicitTLS speaks TLS from the first byte (smtps) with cfg.
func WithImplicitTLS(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil {
			return errors.New("smtpsink: nil TLS config")
		}
		c.tls, c.implicitTLS = cfg, true
		return nil
	}
}

// WithAuth requires clients to log in with AUTH PLAIN as user and password
// before sending. Logging in is only offered over TLS, unless
// [WithInsecureAuth].
func WithAuth(user, password string) Option {
	return func(c *config) error {
		if user == "" {
			return errors.New("smtpsink: empty user")
		}
		c.user, c.pass = user, password
		return nil
	}
}

// WithInsecureAuth offers AUTH on connections without TLS (loopback tests).
func WithInsecureAuth() Option {
	return func(c *config) error {
		c.insecure = true
		return nil
	}
}

// WithRecipientCheck calls check for every RCPT TO address; a non-nil error
// refuses the recipient. An error that is a *smtp.SMTPError is the answer
// as is (550 to refuse for good, 451 to ask the client to try later); any
// other error answers 451 4.3.0.
func WithRecipientCheck(check func(rcpt string) error) Option {
	return func(c *config) error {
		c.check = check
		return nil
	}
}

// WithLogger sets the logger (discard by default). Mail contents are never
// logged; envelope addresses are, at debug level.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("smtpsink: nil logger")
		}
		c.log = l
		return nil
	}
}

// Sink is a running SMTP server that stores mail in a mailbox directory.
type Sink struct {
	cfg    config
	dir    string
	srv    *smtp.Server
	ln     net.Listener
	served chan struct{}

	mu       sync.Mutex
	accepted int
	closed   bool
}

// Start listens on addr ("127.0.0.1:2525"; port 0 picks a free one) and
// serves SMTP until Close, storing mails in the Maildir dir (created when
// missing).
func Start(addr, dir string, opts ...Option) (*Sink, error) {
	cfg := config{
		maxBytes: DefaultMaxMessageBytes,
		maxRcpts: DefaultMaxRecipients,
		domain:   DefaultDomain,
		log:      slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if err := mailbox.Init(dir); err != nil {
		return nil, fmt.Errorf("smtpsink: %w", err)
	}
	s := &Sink{cfg: cfg, dir: dir, served: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = cfg.domain
	srv.MaxMessageBytes = cfg.maxBytes
	srv.MaxRecipients = cfg.maxRcpts
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.AllowInsecureAuth = cfg.insecure
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = errorLog{cfg.log}
	if !cfg.implicitTLS {
		srv.TLSConfig = cfg.tls
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtpsink: %w", err)
	}
	if cfg.implicitTLS {
		srv.TLSConfig = cfg.tls // so the server knows its connections are TLS
		ln = tls.NewListener(ln, cfg.tls)
	}
	s.srv, s.ln = srv, ln
	go func() {
		defer close(s.served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			cfg.log.Error("smtpsink: serve", "err", err)
		}
	}()
	cfg.log.Info("smtp sink listening", "addr", ln.Addr().String(), "mailbox", dir, "tls", cfg.tls != nil, "implicit_tls", cfg.implicitTLS)
	return s, nil
}

// Addr is the address the sink listens on.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// URL is the URL to send to it: smtp://host:port, or smtps:// with
// implicit TLS.
func (s *Sink) URL() string {
	if s.cfg.implicitTLS {
		return "smtps://" + s.Addr()
	}
	return "smtp://" + s.Addr()
}

// Dir is the mailbox directory.
func (s *Sink) Dir() string { return s.dir }

// Accepted is how many mails the sink has stored since it started.
func (s *Sink) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Close stops listening, lets the sessions in progress end (bounded by
// ctx; then they are cut) and returns.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	// Serve may not have registered the listener with the server yet, so
	// Shutdown may not have closed it: close it here too.
	_ = s.ln.Close()
	<-s.served
	if err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		return fmt.Errorf("smtpsink: close: %w", err)
	}
	return nil
}

func (s *Sink) newSession(c *smtp.Conn) (smtp.Session, error) {
	remote := ""
	if a := c.Conn().RemoteAddr(); a != nil {
		remote = a.String()
	}
	_, isTLS := c.TLSConnectionState()
	return &session{sink: s, helo: c.Hostname(), remote: remote, tls: isTLS}, nil
}

// session is one SMTP conversation.
type session struct {
	sink   *Sink
	helo   string
	remote string
	tls    bool
	authed bool
	from   string
	rcpts  []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) needAuth() bool { return ss.sink.cfg.user != "" && !ss.authed }

func (ss *session) AuthMechanisms() []string {
	if ss.sink.cfg.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.sink.cfg.user == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		okUser := subtle.ConstantTimeCompare([]byte(user), []byte(ss.sink.cfg.user)) == 1
		okPass := subtle.ConstantTimeCompare([]byte(pass), []byte(ss.sink.cfg.pass)) == 1
		if !okUser || !okPass || (identity != "" && identity != user) {
			ss.sink.cfg.log.Warn("smtpsink: authentication failed", "remote", ss.remote)
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.needAuth() {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	ss.rcpts = nil
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.needAuth() {
		return smtp.ErrAuthRequired
	}
	if check := ss.sink.cfg.check; check != nil {
		if err := check(to); err != nil {
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				se = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
			}
			ss.sink.cfg.log.Debug("smtpsink: recipient refused", "rcpt", to, "code", se.Code)
			return se
		}
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	if ss.needAuth() {
		return smtp.ErrAuthRequired
	}
	trace := ss.trace()
	id, err := mailbox.Deliver(ss.sink.dir, io.MultiReader(strings.NewReader(trace), r), ss.sink.cfg.maxBytes+int64(len(trace)))
	if err != nil {
		var se *smtp.SMTPError
		switch {
		case errors.As(err, &se):
			return se // the message was too large
		case errors.Is(err, mailbox.ErrTooLarge):
			return smtp.ErrDataTooLarge
		}
		ss.sink.cfg.log.Error("smtpsink: store mail", "err", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Could not store the message; try again later"}
	}
	ss.sink.mu.Lock()
	ss.sink.accepted++
	ss.sink.mu.Unlock()
	ss.sink.cfg.log.Debug("smtpsink: mail stored", "id", id, "from", ss.from, "rcpt", ss.rcpts)
	return nil
}

// trace is the header a delivering server adds on top: Return-Path, one
// Delivered-To per recipient, and Received.
func (ss *session) trace() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Return-Path: <%s>\r\n", headerSafe(ss.from))
	for _, r := range ss.rcpts {
		fmt.Fprintf(&b, "Delivered-To: %s\r\n", headerSafe(r))
	}
	// RFC 3848: ESMTPS over TLS, ESMTPA authenticated, ESMTPSA both.
	with := "ESMTP"
	if ss.tls {
		with += "S"
	}
	if ss.authed {
		with += "A"
	}
	fmt.Fprintf(&b, "Received: from %s (%s)\r\n\tby %s (Herald SMTP sink) with %s;\r\n\t%s\r\n",
		headerSafe(ss.helo), headerSafe(ss.remote), ss.sink.cfg.domain, with, time.Now().Format(time.RFC1123Z))
	return b.String()
}

func (ss *session) Reset() {
	ss.from = ""
	ss.rcpts = nil
}

func (ss *session) Logout() error { return nil }

// headerSafe drops what could break a header line out of a value the client
// chose.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// errorLog routes go-smtp's error log to slog.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) {
	e.log.Warn("smtpsink: " + fmt.Sprintf(format, v...))
}
func (e errorLog) Println(v ...any) { e.log.Warn("smtpsink: " + fmt.Sprint(v...)) }
