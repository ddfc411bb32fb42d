package email_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/herald-dev/herald/events"
	"github.com/herald-dev/herald/services/email"
	"github.com/herald-dev/herald/services/email/mailbox"
	"github.com/herald-dev/herald/services/email/smtpsink"
)

func TestNewMailerURLs(t *testing.T) {
	for _, raw := range []string{
		"smtp://127.0.0.1:2525", "smtp://mail.example.com", "smtps://mail.example.com",
		"smtp://u:p@h:587?starttls=always", "smtp://h:25?starttls=never", "smtps://h:465?skip_verify=true", "SMTP://h:25/",
	} {
		if _, err := email.NewMailer(raw); err != nil {
			t.Errorf("NewMailer(%q): %v", raw, err)
		}
	}
	for _, raw := range []string{
		"", "http://h:25", "smtp://", "smtp://h:0", "smtp://h:99999", "smtp://h:x", "smtp://h:25/path",
		"smtp://h:25?starttls=maybe", "smtps://h?starttls=always", "smtp://h?unknown=1", "smtp://h?starttls=auto&starttls=never",
		"smtp://user:pw-secret@h:25?oops=1", "smtp://user:pw-secret@h:bad", "smtp:host:25", "smtp://h?skip_verify=yes please",
	} {
		_, err := email.NewMailer(raw)
		if !errors.Is(err, email.ErrBadSMTPURL) {
			t.Errorf("NewMailer(%q): %v, want ErrBadSMTPURL", raw, err)
			continue
		}
		if strings.Contains(err.Error(), "pw-secret") {
			t.Errorf("NewMailer(%q): password in the error: %v", raw, err)
		}
	}
	m, _ := email.NewMailer("smtp://user:pw-secret@h:25")
	if s := m.String(); strings.Contains(s, "pw-secret") || !strings.Contains(s, "xxxxx") {
		t.Errorf("String() = %q", s)
	}
}

var testMsg = []byte("From: a@herald.local\r\nTo: b@example.com\r\nSubject: tls\r\n\r\nhello\r\n")

func TestMailerTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	clientTLS := email.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	ctx := context.Background()

	cases := []struct {
		name     string
		sink     []smtpsink.Option
		url      func(addr string) string
		opts     []email.MailerOption
		wantTLS  bool
		wantFail bool
	}{
		{name: "smtps", sink: []smtpsink.Option{smtpsink.WithImplicitTLS(serverTLS)},
			url: func(a string) string { return "smtps://" + a }, opts: []email.MailerOption{clientTLS}, wantTLS: true},
		{name: "smtps untrusted", sink: []smtpsink.Option{smtpsink.WithImplicitTLS(serverTLS)},
			url: func(a string) string { return "smtps://" + a }, wantFail: true},
		{name: "smtps skip_verify", sink: []smtpsink.Option{smtpsink.WithImplicitTLS(serverTLS)},
			url: func(a string) string { return "smtps://" + a + "?skip_verify=true" }, wantTLS: true},
		{name: "starttls auto offered", sink: []smtpsink.Option{smtpsink.WithTLS(serverTLS)},
			url: func(a string) string { return "smtp://" + a }, opts: []email.MailerOption{clientTLS}, wantTLS: true},
		{name: "starttls auto not offered", url: func(a string) string { return "smtp://" + a }},
		{name: "starttls always not offered", url: func(a string) string { return "smtp://" + a + "?starttls=always" }, wantFail: true},
		{name: "starttls never", sink: []smtpsink.Option{smtpsink.WithTLS(serverTLS)},
			url: func(a string) string { return "smtp://" + a + "?starttls=never" }},
		{name: "auth over starttls", sink: []smtpsink.Option{smtpsink.WithTLS(serverTLS), smtpsink.WithAuth("herald", "pw")},
			url: func(a string) string { return "smtp://herald:pw@" + a }, opts: []email.MailerOption{clientTLS}, wantTLS: true},
		{name: "auth refused", sink: []smtpsink.Option{smtpsink.WithTLS(serverTLS), smtpsink.WithAuth("herald", "pw")},
			url: func(a string) string { return "smtp://herald:wrong@" + a }, opts: []email.MailerOption{clientTLS}, wantFail: true},
		{name: "auth required, none given", sink: []smtpsink.Option{smtpsink.WithAuth("herald", "pw"), smtpsink.WithInsecureAuth()},
			url: func(a string) string { return "smtp://" + a }, wantFail: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := smtpsink.Start("127.0.0.1:0", t.TempDir(), tc.sink...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(ctx)
			m, err := email.NewMailer(tc.url(s.Addr()), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			// Twice: the second send uses what auto mode learned.
			for i := range 2 {
				err = m.Send(ctx, "a@herald.local", []string{"b@example.com"}, testMsg)
				if tc.wantFail {
					if err == nil {
						t.Fatal("sent, want a failure")
					}
					if errors.Is(err, email.ErrRejected) {
						t.Fatalf("%v counts as a rejection; a setup problem must be retried", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			mails, _ := mailbox.List(s.Dir())
			if len(mails) != 2 {
				t.Fatalf("%d mails, want 2", len(mails))
			}
			full, _ := mailbox.Get(s.Dir(), mails[0].ID)
			received := strings.Join(full.Header["Received"], " ")
			// The sink's Received header says how the mail came (RFC 3848).
			if !strings.Contains(received, "from localhost") || strings.Contains(received, "with ESMTPS") != tc.wantTLS {
				t.Fatalf("Received %q; want TLS %v", received, tc.wantTLS)
			}
			for _, mm := range mails {
				full, _ := mailbox.Get(s.Dir(), mm.ID)
				if got := strings.Join(full.Header["Received"], " "); got != received && !strings.Contains(got, "with ESMTPS") == tc.wantTLS {
					t.Fatalf("second mail: Received %q; want TLS %v", got, tc.wantTLS)
				}
			}
		})
	}
}

func TestMailerClassifiesErrors(t *testing.T) {
	ctx := context.Background()
	s, err := smtpsink.Start("127.0.0.1:0", t.TempDir(), smtpsink.WithMaxMessageBytes(200), smtpsink.WithRecipientCheck(func(rcpt string) error {
		switch rcpt {
		case "gone@example.com":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
		case "full@example.com":
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"}
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	m, _ := email.NewMailer(s.URL())
	if err := m.Send(ctx, "a@herald.local", []string{"gone@example.com"}, testMsg); !errors.Is(err, email.ErrRejected) || !strings.Contains(err.Error(), "550") {
		t.Errorf("550: %v, want ErrRejected", err)
	}
	if err := m.Send(ctx, "a@herald.local", []string{"full@example.com"}, testMsg); err == nil || errors.Is(err, email.ErrRejected) {
		t.Errorf("452: %v, want a transient error", err)
	}
	big := append(append([]byte{}, testMsg...), []byte(strings.Repeat("x", 500)+"\r\n")...)
	if err := m.Send(ctx, "a@herald.local", []string{"b@example.com"}, big); !errors.Is(err, email.ErrRejected) || !strings.Contains(err.Error(), "552") {
		t.Errorf("552 too large: %v, want ErrRejected", err)
	}
	if err := m.Send(ctx, "a@herald.local", nil, testMsg); !errors.Is(err, email.ErrRejected) {
		t.Errorf("no recipient: %v, want ErrRejected", err)
	}
	if err := m.Send(ctx, "a@herald.local", []string{"jürgen@example.com"}, testMsg); err != nil {
		t.Errorf("UTF-8 address to a server offering SMTPUTF8: %v", err)
	}
	// A server that hangs: the context bounds the exchange.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // never greets
		}
	}()
	hung, _ := email.NewMailer("smtp://" + ln.Addr().String())
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := hung.Send(tctx, "a@herald.local", []string{"b@example.com"}, testMsg); err == nil || errors.Is(err, email.ErrRejected) {
		t.Errorf("hung server: %v, want a transient error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("hung server held Send for %v", took)
	}
}

func TestWelcomeIsHeaderInjectionSafe(t *testing.T) {
	from, _ := mail.ParseAddress("Herald <welcome@herald.local>")
	u := events.UserRegistered{
		ID: "u", Email: "eve@example.com", RegisteredAt: time.Now(),
		Name: "Eve\r\nBcc: victim@example.com\r\nSubject: pwned\u2028X-Evil: 1\x00",
	}
	w := email.NewWelcome(from, u, "evt\r\nX-Injected: 1", time.Now())
	raw, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	hdr, _, _ := strings.Cut(string(raw), "\r\n\r\n")
	for _, line := range strings.Split(hdr, "\r\n") {
		if strings.HasPrefix(line, " ") {
			continue // a folded continuation of the previous field
		}
		name, _, _ := strings.Cut(line, ":")
		switch strings.ToLower(name) {
		case "from", "to", "subject", "date", "message-id", "mime-version", "content-type", "content-transfer-encoding", "auto-submitted":
		default:
			t.Fatalf("unexpected header line %q in:\n%s", line, hdr)
		}
	}
	m, err := mailbox.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.To) != 1 || !strings.HasSuffix(m.To[0], "<eve@example.com>") {
		t.Fatalf("To %q", m.To)
	}
	if !strings.HasPrefix(m.Subject, "Welcome to Herald, Eve Bcc: victim@example.com Subject: pwned") {
		t.Fatalf("subject %q", m.Subject)
	}

	// A huge name is cut, so no header line is too long for SMTP.
	u.Name = strings.Repeat("Ü", 20000)
	raw, err = email.NewWelcome(from, u, "e", time.Now()).Bytes()
	if err != nil {
		t.Fatalf("huge name: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line of %d bytes", len(line))
		}
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
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "herald test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
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
