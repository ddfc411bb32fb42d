package mailbox_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/herald-dev/herald/services/email/mailbox"
)

const plain = "Return-Path: <welcome@herald.local>\r\n" +
	"Delivered-To: ada@example.com\r\n" +
	"From: Herald <welcome@herald.local>\r\n" +
	"To: Ada Lovelace <ada@example.com>\r\n" +
	"Subject: Welcome to Herald, Ada\r\n" +
	"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <abc@herald.local>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Hello Ada,\r\nwelcome.\r\n"

func deliver(t *testing.T, dir, raw string) string {
	t.Helper()
	id, err := mailbox.Deliver(dir, strings.NewReader(raw), 0)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestDeliverListGet(t *testing.T) {
	dir := t.TempDir()
	id1 := deliver(t, dir, plain)
	id2 := deliver(t, dir, strings.Replace(plain, "Ada", "Grace", -1))

	mails, err := mailbox.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(mails) != 2 || mails[0].ID != id2 || mails[1].ID != id1 {
		t.Fatalf("List: %+v; want %s then %s (newest first)", mails, id2, id1)
	}
	m := mails[1]
	if m.From != "Herald <welcome@herald.local>" || len(m.To) != 1 || m.To[0] != "Ada Lovelace <ada@example.com>" ||
		m.Subject != "Welcome to Herald, Ada" || m.MessageID != "abc@herald.local" || m.Date.IsZero() ||
		m.Size != int64(len(plain)) || len(m.Rcpt) != 1 || m.Rcpt[0] != "ada@example.com" || m.Body != "" {
		t.Fatalf("listed %+v", m)
	}

	got, err := mailbox.Get(dir, id1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Body != "Hello Ada,\nwelcome.\n" || got.Subject != m.Subject || got.ID != id1 || got.Header["Mime-Version"][0] != "1.0" {
		t.Fatalf("Get: %+v", got)
	}
	// Nothing left in tmp/.
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Fatalf("tmp/ holds %d files after delivery", len(left))
	}
}

func TestGetFindsCurWithInfo(t *testing.T) {
	dir := t.TempDir()
	id := deliver(t, dir, plain)
	if err := os.Rename(filepath.Join(dir, "new", id), filepath.Join(dir, "cur", id+":2,S")); err != nil {
		t.Fatal(err)
	}
	if m, err := mailbox.Get(dir, id); err != nil || m.ID != id {
		t.Fatalf("Get of a mail in cur/: %+v, %v", m, err)
	}
	if mails, err := mailbox.List(dir); err != nil || len(mails) != 1 || mails[0].ID != id {
		t.Fatalf("List with a mail in cur/: %+v, %v", mails, err)
	}
}

func TestGetErrors(t *testing.T) {
	dir := t.TempDir()
	deliver(t, dir, plain)
	for _, id := range []string{"", "../../etc/passwd", "..", ".hidden", "a/b", "a\x00b", strings.Repeat("a", 256)} {
		if _, err := mailbox.Get(dir, id); !errors.Is(err, mailbox.ErrBadID) {
			t.Errorf("Get(%q): %v, want ErrBadID", id, err)
		}
	}
	if _, err := mailbox.Get(dir, "1234.abc.host"); !errors.Is(err, mailbox.ErrNotFound) {
		t.Errorf("Get of an unknown id: %v, want ErrNotFound", err)
	}
	if _, err := mailbox.List(filepath.Join(dir, "missing")); err == nil {
		t.Error("List of a missing directory: nil error")
	}
}

func TestDeliverLimit(t *testing.T) {
	dir := t.TempDir()
	_, err := mailbox.Deliver(dir, strings.NewReader(plain), 10)
	if !errors.Is(err, mailbox.ErrTooLarge) {
		t.Fatalf("Deliver over the limit: %v, want ErrTooLarge", err)
	}
	for _, sub := range []string{"tmp", "new"} {
		if left, _ := os.ReadDir(filepath.Join(dir, sub)); len(left) != 0 {
			t.Fatalf("%s/ holds %d files after a refused delivery", sub, len(left))
		}
	}
	if _, err := mailbox.Deliver(dir, strings.NewReader(plain), int64(len(plain))); err != nil {
		t.Fatalf("Deliver of exactly the limit: %v", err)
	}
}

func TestParseEncodings(t *testing.T) {
	cases := []struct {
		name, raw, subject, body string
	}{
		{
			name: "quoted-printable latin1 subject",
			raw: "From: a@b.c\r\nSubject: =?ISO-8859-1?Q?Bienvenue_=E0_Herald?=\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
				"Bonjour Ren=C3=A9,=\r\nsoft break.\r\n",
			subject: "Bienvenue à Herald", body: "Bonjour René,soft break.\n",
		},
		{
			name: "base64 wrapped",
			raw: "Subject: =?utf-8?B?V2lsbGtvbW1lbiwgSsO8cmdlbg==?=\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
				"SGFsbG8g\r\nSsO8cmdlbg==\r\n",
			subject: "Willkommen, Jürgen", body: "Hallo Jürgen",
		},
		{
			name: "multipart alternative",
			raw: "Subject: multi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=XYZ\r\n\r\n" +
				"--XYZ\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n" +
				"--XYZ\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n" +
				"--XYZ--\r\n",
			subject: "multi", body: "café",
		},
		{
			name: "nested multipart",
			raw: "Subject: nested\r\nContent-Type: multipart/mixed; boundary=OUT\r\n\r\n" +
				"--OUT\r\nContent-Type: multipart/alternative; boundary=IN\r\n\r\n" +
				"--IN\r\nContent-Type: text/plain\r\n\r\ninner text\r\n--IN--\r\n" +
				"--OUT\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--OUT--\r\n",
			subject: "nested", body: "inner text",
		},
		{
			name:    "no content type",
			raw:     "Subject: bare\r\n\r\njust text\r\n",
			subject: "bare", body: "just text\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mailbox.Parse([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != tc.subject || m.Body != tc.body {
				t.Fatalf("subject %q body %q problem %q; want %q, %q", m.Subject, m.Body, m.Problem, tc.subject, tc.body)
			}
		})
	}
}

func TestParseProblems(t *testing.T) {
	if _, err := mailbox.Parse([]byte("no header at all")); !errors.Is(err, mailbox.ErrMalformed) {
		t.Fatalf("Parse of a non-mail: %v, want ErrMalformed", err)
	}
	m, err := mailbox.Parse([]byte("Subject: x\r\nContent-Type: multipart/mixed\r\n\r\nbody"))
	if err != nil || m.Problem == "" || m.Body != "" {
		t.Fatalf("multipart without boundary: %+v, %v; want a Problem and no body", m, err)
	}
	m, err = mailbox.Parse([]byte("Subject: x\r\nContent-Type: image/png\r\n\r\n\x89PNG"))
	if err != nil || m.Problem == "" || m.Body != "" {
		t.Fatalf("non-text mail: %+v, %v; want a Problem and no body", m, err)
	}
	m, err = mailbox.Parse([]byte("Subject: evil\x1b[2J\r\n\r\nx"))
	if err != nil || strings.ContainsRune(m.Subject, 0x1b) {
		t.Fatalf("control characters kept in the subject: %q, %v", m.Subject, err)
	}
}

// TestConcurrentReader: a reader listing while mails arrive sees only whole
// mails, each parseable, never a partial file.
func TestConcurrentReader(t *testing.T) {
	dir := t.TempDir()
	if err := mailbox.Init(dir); err != nil {
		t.Fatal(err)
	}
	big := plain + strings.Repeat("0123456789abcdef\r\n", 20000)
	const n = 40
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; i < n; i++ {
			deliver(t, dir, big)
		}
		close(stop)
	})
	seen := 0
	for done := false; !done; {
		select {
		case <-stop:
			done = true
		default:
		}
		mails, err := mailbox.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mails {
			if m.Size != int64(len(big)) || m.Problem != "" {
				t.Fatalf("reader saw a partial or broken mail: size %d of %d, problem %q", m.Size, len(big), m.Problem)
			}
		}
		seen = len(mails)
	}
	wg.Wait()
	if mails, _ := mailbox.List(dir); len(mails) != n {
		t.Fatalf("%d mails, want %d (last seen during writes: %d)", len(mails), n, seen)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(plain))
	f.Add([]byte("Subject: =?utf-8?q?=C3=A9?=\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\nYQ==\r\n--b--\r\n"))
	f.Add([]byte("To: =?x-unknown?q?a?= <a@b>\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n\xff\xfe"))
	f.Add([]byte("Content-Type: multipart/a; boundary=\"\"\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := mailbox.Parse(raw)
		if err != nil {
			if !errors.Is(err, mailbox.ErrMalformed) && !errors.Is(err, mailbox.ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrTooLarge", err)
			}
			return
		}
		for _, s := range append(append([]string{m.Subject, m.From, m.Body, m.MessageID}, m.To...), m.Rcpt...) {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 out of Parse: %q", s)
			}
		}
		if strings.ContainsAny(m.Subject+m.From+strings.Join(m.To, ""), "\r\n\x1b") {
			t.Fatalf("control characters in header fields: %q %q %q", m.Subject, m.From, m.To)
		}
		again, err := mailbox.Parse(bytes.Clone(raw))
		if err != nil || again.Body != m.Body || again.Subject != m.Subject {
			t.Fatalf("Parse is not deterministic")
		}
	})
}
