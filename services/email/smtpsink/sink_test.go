package smtpsink_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/herald-dev/herald/services/email/mailbox"
	"github.com/herald-dev/herald/services/email/smtpsink"
)

func start(t *testing.T, opts ...smtpsink.Option) *smtpsink.Sink {
	t.Helper()
	s, err := smtpsink.Start("127.0.0.1:0", t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func message(to, subject, body string) string {
	return "From: Herald <welcome@herald.local>\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nDate: " + time.Now().Format(time.RFC1123Z) + "\r\nMessage-ID: <" + subject + "@test>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
}

func TestRoundTrip(t *testing.T) {
	s := start(t)
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		to := fmt.Sprintf("user%d@example.com", i)
		body := fmt.Sprintf("Hello user %d,\r\n.leading dot line\r\nbye\r\n", i)
		if err := c.SendMail("welcome@herald.local", []string{to}, strings.NewReader(message(to, fmt.Sprintf("s%d", i), body))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if s.Accepted() != 3 {
		t.Fatalf("Accepted = %d, want 3", s.Accepted())
	}
	mails, err := mailbox.List(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(mails) != 3 {
		t.Fatalf("%d mails, want 3", len(mails))
	}
	for j, m := range mails {
		i := 2 - j // newest first
		to := fmt.Sprintf("user%d@example.com", i)
		if m.Subject != fmt.Sprintf("s%d", i) || len(m.Rcpt) != 1 || m.Rcpt[0] != to || m.To[0] != to || m.From != "Herald <welcome@herald.local>" {
			t.Fatalf("mail %d: %+v", j, m)
		}
		full, err := mailbox.Get(s.Dir(), m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("Hello user %d,\n.leading dot line\nbye\n", i); full.Body != want {
			t.Fatalf("body %q, want %q", full.Body, want)
		}
		if got := full.Header["Return-Path"]; len(got) != 1 || got[0] != "<welcome@herald.local>" {
			t.Fatalf("Return-Path %q", got)
		}
	}
}

func TestRecipientCheck(t *testing.T) {
	var mu sync.Mutex
	tries := 0
	s := start(t, smtpsink.WithRecipientCheck(func(rcpt string) error {
		switch rcpt {
		case "nobody@example.com":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
		case "later@example.com":
			mu.Lock()
			defer mu.Unlock()
			if tries++; tries <= 2 {
				return errors.New("busy")
			}
		}
		return nil
	}))
	send := func(to string) error {
		return sendPlain(t, s.Addr(), "a@herald.local", []string{to}, strings.NewReader(message(to, "x", "x\r\n")))
	}
	var se *smtp.SMTPError
	if err := send("nobody@example.com"); !errors.As(err, &se) || se.Code != 550 {
		t.Fatalf("rejected recipient: %v, want 550", err)
	}
	for i := range 2 {
		if err := send("later@example.com"); !errors.As(err, &se) || se.Code != 451 {
			t.Fatalf("try %d: %v, want 451", i+1, err)
		}
	}
	if err := send("later@example.com"); err != nil {
		t.Fatalf("third try: %v", err)
	}
	if mails, _ := mailbox.List(s.Dir()); len(mails) != 1 || mails[0].Rcpt[0] != "later@example.com" {
		t.Fatalf("mailbox: %+v, want the one accepted mail", mails)
	}
}

func TestSizeLimit(t *testing.T) {
	s := start(t, smtpsink.WithMaxMessageBytes(1024))
	big := message("a@example.com", "big", strings.Repeat("x", 70)+"\r\n")
	big += strings.Repeat(strings.Repeat("y", 70)+"\r\n", 30)
	err := sendPlain(t, s.Addr(), "a@herald.local", []string{"a@example.com"}, strings.NewReader(big))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 552 {
		t.Fatalf("oversized mail: %v, want 552", err)
	}
	if err := sendPlain(t, s.Addr(), "a@herald.local", []string{"a@example.com"}, strings.NewReader(message("a@example.com", "small", "ok\r\n"))); err != nil {
		t.Fatalf("small mail after a refused one: %v", err)
	}
	if mails, _ := mailbox.List(s.Dir()); len(mails) != 1 || mails[0].Subject != "small" {
		t.Fatalf("mailbox: %+v, want only the small mail", mails)
	}
}

func TestMaxRecipients(t *testing.T) {
	s := start(t, smtpsink.WithMaxRecipients(2))
	err := sendPlain(t, s.Addr(), "a@herald.local", []string{"a@x.y", "b@x.y", "c@x.y"}, strings.NewReader(message("a@x.y", "x", "x\r\n")))
	if err == nil {
		t.Fatal("three recipients accepted with a limit of two")
	}
}

func TestAuthAndTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	clientTLS := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	msg := message("a@example.com", "secure", "hi\r\n")

	t.Run("starttls with auth", func(t *testing.T) {
		s := start(t, smtpsink.WithTLS(tlsCfg), smtpsink.WithAuth("herald", "s3cret"))
		// Without TLS, AUTH is not even offered, and mail is refused.
		c, err := smtp.Dial(s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Extension("AUTH"); ok {
			t.Fatal("AUTH offered over plain text")
		}
		if ok, _ := c.Extension("STARTTLS"); !ok {
			t.Fatal("STARTTLS not offered")
		}
		if err := c.Mail("a@herald.local", nil); err == nil {
			t.Fatal("MAIL accepted without authentication")
		}
		c.Close()

		c, err = smtp.DialStartTLS(s.Addr(), clientTLS)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Auth(sasl.NewPlainClient("", "herald", "wrong")); err == nil {
			t.Fatal("wrong password accepted")
		}
		if err := c.Auth(sasl.NewPlainClient("", "herald", "s3cret")); err != nil {
			t.Fatalf("auth: %v", err)
		}
		if err := c.SendMail("a@herald.local", []string{"a@example.com"}, strings.NewReader(msg)); err != nil {
			t.Fatal(err)
		}
		if s.Accepted() != 1 {
			t.Fatalf("Accepted = %d", s.Accepted())
		}
	})
	t.Run("implicit tls", func(t *testing.T) {
		s := start(t, smtpsink.WithImplicitTLS(tlsCfg))
		if !strings.HasPrefix(s.URL(), "smtps://") {
			t.Fatalf("URL %q", s.URL())
		}
		c, err := smtp.DialTLS(s.Addr(), clientTLS)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.SendMail("a@herald.local", []string{"a@example.com"}, strings.NewReader(msg)); err != nil {
			t.Fatal(err)
		}
		if _, ok := c.TLSConnectionState(); !ok {
			t.Fatal("not TLS")
		}
	})
}

func TestCloseWaitsAndRefuses(t *testing.T) {
	s, err := smtpsink.Start("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("still listening after Close")
	}
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "herald test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// sendPlain sends one mail over a plain connection (smtp.SendMail insists
// on STARTTLS).
func sendPlain(t *testing.T, addr, from string, to []string, r *strings.Reader) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.SendMail(from, to, r)
}
