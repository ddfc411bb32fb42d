package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// ErrRejected is wrapped by [Mailer.Send] when the server refused the
// message or its recipient for good (a 5xx answer to RCPT TO or to the
// message data): sending it again cannot help.
var ErrRejected = errors.New("email: rejected by the SMTP server")

// ErrBadSMTPURL is wrapped by [NewMailer] for a URL it cannot use.
var ErrBadSMTPURL = errors.New("email: invalid SMTP URL")

// STARTTLS policies of an smtp:// URL (query parameter "starttls").
const (
	// StartTLSAuto upgrades the connection when the server offers STARTTLS.
	StartTLSAuto = "auto"
	// StartTLSAlways refuses to send unless the server offers STARTTLS.
	StartTLSAlways = "always"
	// StartTLSNever never upgrades.
	StartTLSNever = "never"
)

// Mailer sends mail to one SMTP server, one connection per mail. It is safe
// for concurrent use.
type Mailer struct {
	addr        string // host:port
	host        string
	implicitTLS bool
	startTLS    string
	user, pass  string
	hasAuth     bool
	tls         *tls.Config
	localName   string
	redacted    string
	log         *slog.Logger

	// offers remembers whether the server offered STARTTLS (0 unknown, 1
	// yes, 2 no), so auto mode probes once, not for every mail.
	offers atomic.Int32
}

// MailerOption configures [NewMailer].
type MailerOption func(*Mailer) error

// WithTLSConfig sets the TLS configuration (trusted roots…) for smtps:// and
// STARTTLS. The server name is filled in from the URL when empty.
func WithTLSConfig(c *tls.Config) MailerOption {
	return func(m *Mailer) error {
		if c == nil {
			return fmt.Errorf("%w: nil TLS config", ErrBadSMTPURL)
		}
		m.tls = c.Clone()
		return nil
	}
}

// WithMailerLogger sets the logger (discard by default).
func WithMailerLogger(l *slog.Logger) MailerOption {
	return func(m *Mailer) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrBadSMTPURL)
		}
		m.log = l
		return nil
	}
}

// WithLocalName sets the name the mailer gives in EHLO (default
// "localhost").
func WithLocalName(name string) MailerOption {
	return func(m *Mailer) error {
		if name == "" || strings.ContainsAny(name, " \r\n") {
			return fmt.Errorf("%w: local name %q", ErrBadSMTPURL, name)
		}
		m.localName = name
		return nil
	}
}

// NewMailer returns a mailer for the server at rawURL:
//
//	smtp://host[:port]           port 25; STARTTLS when offered
//	smtp://host:port?starttls=always|never|auto
//	smtps://host[:port]          port 465; TLS from the first byte
//	smtp://user:password@host:587  AUTH PLAIN (only over TLS, or to a
//	                             loopback address)
//	…?skip_verify=true           do not verify the server's certificate
//	                             (tests against self-signed servers only)
//
// Errors never contain the password.
func NewMailer(rawURL string, opts ...MailerOption) (*Mailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		if ue, ok := err.(*url.Error); ok { // it repeats the URL, password included
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: %v", ErrBadSMTPURL, err)
	}
	m := &Mailer{startTLS: StartTLSAuto, localName: "localhost", redacted: u.Redacted(), log: slog.New(slog.DiscardHandler)}
	port := ""
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		port = "25"
	case "smtps":
		port, m.implicitTLS = "465", true
	default:
		return nil, fmt.Errorf("%w: %q: scheme must be smtp or smtps", ErrBadSMTPURL, m.redacted)
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.Opaque != "" {
		return nil, fmt.Errorf("%w: %q: want %s://host:port", ErrBadSMTPURL, m.redacted, u.Scheme)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%w: %q: bad port", ErrBadSMTPURL, m.redacted)
		}
		port = p
	}
	m.host = u.Hostname()
	m.addr = net.JoinHostPort(m.host, port)
	skipVerify := false
	for k, v := range u.Query() {
		if len(v) != 1 {
			return nil, fmt.Errorf("%w: %q: %q given %d times", ErrBadSMTPURL, m.redacted, k, len(v))
		}
		switch k {
		case "starttls":
			switch v[0] {
			case StartTLSAuto, StartTLSAlways, StartTLSNever:
				m.startTLS = v[0]
			default:
				return nil, fmt.Errorf("%w: %q: starttls must be auto, always or never", ErrBadSMTPURL, m.redacted)
			}
			if m.implicitTLS {
				return nil, fmt.Errorf("%w: %q: starttls does not apply to smtps", ErrBadSMTPURL, m.redacted)
			}
		case "skip_verify":
			b, err := strconv.ParseBool(v[0])
			if err != nil {
				return nil, fmt.Errorf("%w: %q: skip_verify must be true or false", ErrBadSMTPURL, m.redacted)
			}
			skipVerify = b
		default:
			return nil, fmt.Errorf("%w: %q: unknown query parameter %q (known: starttls, skip_verify)", ErrBadSMTPURL, m.redacted, k)
		}
	}
	if u.User != nil {
		m.user = u.User.Username()
		m.pass, _ = u.User.Password()
		m.hasAuth = m.user != ""
	}
	for _, opt := range opts {
		if err := opt(m); err != nil {
			return nil, err
		}
	}
	if m.tls == nil {
		m.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if m.tls.ServerName == "" {
		m.tls.ServerName = m.host
	}
	if skipVerify {
		m.tls.InsecureSkipVerify = true //nolint:gosec // asked for by the URL, for test servers
	}
	return m, nil
}

// String is the server's URL without its password.
func (m *Mailer) String() string { return m.redacted }

// Send delivers msg (a whole RFC 5322 message, CRLF line ends) from the
// envelope sender from to the recipients to. ctx bounds the whole exchange.
//
// A 5xx answer to a recipient or to the data returns an error wrapping
// [ErrRejected]; every other failure (4xx answers, connection, TLS or
// authentication errors, a server that is down) is worth retrying later and
// does not wrap it.
func (m *Mailer) Send(ctx context.Context, from string, to []string, msg []byte) error {
	if len(to) == 0 {
		return fmt.Errorf("%w: no recipient", ErrRejected)
	}
	c, release, err := m.dial(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("email: smtp %s: %w (%v)", m.addr, ctx.Err(), err)
		}
		return fmt.Errorf("email: smtp %s: %w", m.addr, err)
	}
	defer release()

	var mailOpts *smtp.MailOptions
	if !ascii(from) || !ascii(strings.Join(to, "")) {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return fmt.Errorf("%w: an address is not ASCII and the server does not offer SMTPUTF8", ErrRejected)
		}
		mailOpts = &smtp.MailOptions{UTF8: true}
	}
	if err := c.Mail(from, mailOpts); err != nil {
		return m.fail(ctx, "MAIL FROM", err, false)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return m.fail(ctx, "RCPT TO", err, true)
		}
	}
	w, err := c.Data()
	if err != nil {
		return m.fail(ctx, "DATA", err, true)
	}
	if _, err := w.Write(msg); err != nil {
		return m.fail(ctx, "DATA", err, false)
	}
	if err := w.Close(); err != nil {
		return m.fail(ctx, "DATA", err, true)
	}
	if err := c.Quit(); err != nil {
		// The message was accepted; a failed QUIT does not undo that.
		m.log.Debug("email: smtp quit", "server", m.redacted, "err", err)
	}
	return nil
}

// fail wraps an error of stage; a 5xx answer where the message or a
// recipient is judged (permanentStage) is a rejection.
func (m *Mailer) fail(ctx context.Context, stage string, err error, permanentStage bool) error {
	if ctx.Err() != nil {
		return fmt.Errorf("email: smtp %s: %s: %w (%v)", m.addr, stage, ctx.Err(), err)
	}
	var se *smtp.SMTPError
	if permanentStage && errors.As(err, &se) && se.Code >= 500 && se.Code < 600 {
		return fmt.Errorf("%w: %s: %v", ErrRejected, stage, err)
	}
	return fmt.Errorf("email: smtp %s: %s: %w", m.addr, stage, err)
}

// dial connects, says hello, upgrades to TLS as configured and logs in.
// The returned client is closed when ctx ends, which unblocks a hung
// server; release must be called when done with it.
func (m *Mailer) dial(ctx context.Context) (c *smtp.Client, release func(), err error) {
	useStartTLS := m.startTLS == StartTLSAlways || (m.startTLS == StartTLSAuto && m.offers.Load() == 1)
	c, release, err = m.connect(ctx, useStartTLS)
	if err != nil {
		return nil, nil, err
	}
	if !m.implicitTLS && m.startTLS == StartTLSAuto && m.offers.Load() == 0 {
		// First connection in auto mode: see whether the server offers
		// STARTTLS. go-smtp upgrades only a fresh client, so when it does,
		// reconnect with the upgrade; later mails go straight to it.
		if ok, _ := c.Extension("STARTTLS"); ok {
			m.offers.Store(1)
			release()
			if c, release, err = m.connect(ctx, true); err != nil {
				return nil, nil, err
			}
		} else {
			m.offers.Store(2)
		}
	}
	if m.hasAuth {
		if err := m.login(c); err != nil {
			release()
			return nil, nil, err
		}
	}
	return c, release, nil
}

// connect opens one client: TCP, then implicit TLS or STARTTLS as asked,
// then EHLO with the local name.
func (m *Mailer) connect(ctx context.Context, startTLS bool) (*smtp.Client, func(), error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	release := func() {
		stop()
		conn.Close()
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl) // until go-smtp sets its own per command
	}
	var c *smtp.Client
	switch {
	case m.implicitTLS:
		tc := tls.Client(conn, m.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			release()
			return nil, nil, fmt.Errorf("tls: %w", err)
		}
		c = smtp.NewClient(tc)
	case startTLS:
		// The EHLO before the upgrade says "localhost"; the one after it,
		// below, gives our name.
		if c, err = smtp.NewClientStartTLS(conn, m.tls); err != nil {
			release()
			return nil, nil, fmt.Errorf("starttls: %w", err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	c.CommandTimeout, c.SubmissionTimeout = timeout, timeout
	if err := c.Hello(m.localName); err != nil {
		release()
		return nil, nil, err
	}
	return c, func() {
		stop()
		c.Close()
	}, nil
}

// login authenticates with AUTH PLAIN, refusing to send the password in
// clear text except to a loopback address.
func (m *Mailer) login(c *smtp.Client) error {
	if _, isTLS := c.TLSConnectionState(); !isTLS && !isLoopback(m.host) {
		return errors.New("auth: refusing to send a password without TLS (use smtps:// or a server that offers STARTTLS)")
	}
	if ok, _ := c.Extension("AUTH"); !ok {
		return errors.New("auth: the server does not offer AUTH")
	}
	if err := c.Auth(sasl.NewPlainClient("", m.user, m.pass)); err != nil {
		return fmt.Errorf("auth as %q: %w", m.user, err)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
