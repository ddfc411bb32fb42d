package email

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
	"unicode"

	"github.com/herald-dev/herald/events"
)

// maxNameRunes bounds how much of a user's name goes into the subject and
// the greeting, so a huge name cannot make header lines longer than SMTP
// allows.
const maxNameRunes = 200

// Welcome is the welcome mail for one registered user.
type Welcome struct {
	From    *mail.Address
	To      *mail.Address
	Subject string
	Body    string // plain text, "\n" line ends
	// MessageID is derived from the event ID, so every send of one event
	// carries the same Message-ID and receivers can spot a duplicate.
	MessageID string
	Date      time.Time
}

// NewWelcome builds the welcome mail for u, from from, for the event with
// ID eventID.
func NewWelcome(from *mail.Address, u events.UserRegistered, eventID string, now time.Time) Welcome {
	name := displayName(u.Name)
	w := Welcome{
		From:      from,
		To:        &mail.Address{Name: name, Address: u.Email},
		Subject:   "Welcome to Herald",
		MessageID: messageID(eventID, from.Address),
		Date:      now,
	}
	greeting := "Hello,"
	if name != "" {
		w.Subject = "Welcome to Herald, " + name
		greeting = "Hello " + name + ","
	}
	w.Body = greeting + "\n\n" +
		"welcome to Herald! Your account for " + u.Email + " is ready.\n\n" +
		"Herald sends this mail once, when you register. If you did not\n" +
		"register, you can ignore it.\n\n" +
		"-- \nHerald\n"
	return w
}

// Bytes renders the mail as an RFC 5322 message with CRLF line ends: UTF-8
// text in quoted-printable, headers encoded (RFC 2047) where they are not
// plain ASCII. No header value can carry a line break: names are cleaned of
// control characters and addresses were validated by the event decoder.
func (w Welcome) Bytes() ([]byte, error) {
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(fold(k + ": " + v)) }
	header("From", w.From.String())
	header("To", w.To.String())
	header("Subject", mime.QEncoding.Encode("utf-8", w.Subject))
	header("Date", w.Date.Format(time.RFC1123Z))
	header("Message-ID", "<"+w.MessageID+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ReplaceAll(w.Body, "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	raw := b.Bytes()
	for _, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 {
			return nil, fmt.Errorf("email: a line of the welcome mail is %d bytes, more than 998", len(line))
		}
	}
	return raw, nil
}

// displayName cleans a user's name for headers and text: no control or
// line-separator characters, spaces collapsed, at most maxNameRunes runes.
func displayName(name string) string {
	name = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r' || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r):
			return ' '
		case unicode.IsControl(r) || r == unicode.ReplacementChar || unicode.Is(unicode.Cf, r):
			return -1
		}
		return r
	}, name)
	name = strings.Join(strings.Fields(name), " ")
	if r := []rune(name); len(r) > maxNameRunes {
		name = string(r[:maxNameRunes]) + "…"
	}
	return name
}

// messageID makes the Message-ID of the event's mail: the event ID when it
// is a plain token, else its hash, at the sender's domain.
func messageID(eventID, from string) string {
	domain := "herald.local"
	if _, d, ok := strings.Cut(from, "@"); ok && d != "" && !strings.ContainsAny(d, "<>\r\n ") {
		domain = d
	}
	local := eventID
	if local == "" || len(local) > 64 || strings.IndexFunc(local, func(r rune) bool {
		return !(r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '.' || r == '_'))
	}) >= 0 || strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		sum := sha256.Sum256([]byte(eventID))
		local = hex.EncodeToString(sum[:16])
	}
	return "welcome." + local + "@" + domain
}

// fold breaks a header line at spaces so that its lines stay within 78
// bytes where the words allow (RFC 5322 folding: the break is CRLF before
// the space, which unfolding removes). It returns the line with its CRLF.
func fold(line string) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Split(line, " ") {
		if i > 0 {
			if n+1+len(word) > 78 {
				b.WriteString("\r\n")
				n = 0
			}
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	b.WriteString("\r\n")
	return b.String()
}
