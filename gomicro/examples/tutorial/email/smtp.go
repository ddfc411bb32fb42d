package email

import (
	"context"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"strings"
	"time"
)

// SMTP is a [Mailer] that hands mails to an SMTP server (a relay, or
// Herald's SMTP sink) without authentication or TLS: for the tutorial, on
// loopback.
type SMTP struct {
	// Addr is the server's host:port.
	Addr string
	// From is the sender address.
	From string
}

// Send sends one plain-text mail, bounded by ctx.
func (m SMTP) Send(ctx context.Context, to, subject, body string) error {
	if strings.ContainsAny(to+subject+m.From, "\r\n") {
		return fmt.Errorf("email: line break in an address or the subject")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return fmt.Errorf("email: smtp: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(time.Minute))
	}
	host, _, _ := net.SplitHostPort(m.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("email: smtp: %w", err)
	}
	defer c.Close()
	if err := c.Mail(m.From); err != nil {
		return fmt.Errorf("email: smtp MAIL: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("email: smtp RCPT: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("email: smtp DATA: %w", err)
	}
	msg := "From: " + m.From + "\r\nTo: " + to + "\r\nSubject: " + mime.QEncoding.Encode("utf-8", subject) +
		"\r\nDate: " + time.Now().Format(time.RFC1123Z) +
		"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
	if _, err := w.Write([]byte(msg)); err != nil {
		return fmt.Errorf("email: smtp DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("email: smtp DATA: %w", err)
	}
	return c.Quit()
}
