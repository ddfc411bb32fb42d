package mailbox

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on what is parsed.
const (
	// MaxMailBytes bounds a mail that [Get] and [Parse] read.
	MaxMailBytes = 32 << 20
	// MaxHeaderBytes bounds the header block [List] reads.
	MaxHeaderBytes = 256 << 10
	maxDepth       = 8   // multipart nesting
	maxParts       = 256 // parts per multipart
)

// ErrMalformed is wrapped by [Parse] for a mail whose header cannot be read.
var ErrMalformed = errors.New("mailbox: malformed mail")

// Mail is one stored mail as [List] and [Get] return it.
type Mail struct {
	// ID names the mail in its mailbox.
	ID string `json:"id"`
	// From is the From header: "Name <address>" or "address".
	From string `json:"from"`
	// To is the To header, one entry per address.
	To []string `json:"to"`
	// Rcpt is the envelope recipients the SMTP sink recorded
	// (Delivered-To headers).
	Rcpt []string `json:"rcpt,omitempty"`
	// Subject is the decoded Subject header.
	Subject string `json:"subject"`
	// Date is the Date header (zero when absent or invalid).
	Date time.Time `json:"date,omitzero"`
	// Received is when the mailbox received the mail.
	Received time.Time `json:"received,omitzero"`
	// Size is the mail's size in bytes as stored.
	Size int64 `json:"size"`
	// MessageID is the Message-ID header, without its angle brackets.
	MessageID string `json:"message_id,omitempty"`
	// Header is every header field, decoded ([Get] only).
	Header map[string][]string `json:"header,omitempty"`
	// Body is the text: the text/plain part, its transfer encoding and
	// charset decoded, line ends as "\n" ([Get] only).
	Body string `json:"body,omitempty"`
	// Problem says what could not be read, when something could not.
	Problem string `json:"problem,omitempty"`
}

// Parse parses a whole mail: its header fields and its text body. It
// returns an error wrapping [ErrMalformed] when the header cannot be read,
// and [ErrTooLarge] for more than [MaxMailBytes]; a body it cannot decode
// leaves Body empty and says why in Problem.
func Parse(raw []byte) (Mail, error) {
	if len(raw) > MaxMailBytes {
		return Mail{}, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, len(raw), MaxMailBytes)
	}
	msg, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return Mail{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	m := fromHeader(msg.Header)
	m.Size = int64(len(raw))
	m.Header = decodedHeader(msg.Header)
	body, ok, err := textBody(msg.Header, msg.Body, 0)
	switch {
	case err != nil:
		m.Problem = "body: " + err.Error()
	case !ok:
		m.Problem = "no text/plain part"
	default:
		m.Body = body
	}
	return m, nil
}

// parseHeader reads only the header block of a mail.
func parseHeader(r io.Reader) (Mail, error) {
	msg, err := mail.ReadMessage(bufio.NewReader(io.LimitReader(r, MaxHeaderBytes)))
	if err != nil {
		return Mail{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return fromHeader(msg.Header), nil
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

func fromHeader(h mail.Header) Mail {
	var m Mail
	m.Subject = decodeWords(h.Get("Subject"))
	m.From = strings.Join(addresses(h.Get("From")), ", ")
	m.To = addresses(h.Get("To"))
	if m.To == nil {
		m.To = []string{} // JSON [] rather than null
	}
	for _, rcpt := range h["Delivered-To"] {
		m.Rcpt = append(m.Rcpt, clean(strings.TrimSpace(rcpt)))
	}
	if d, err := mail.ParseDate(h.Get("Date")); err == nil {
		m.Date = d
	}
	m.MessageID = clean(strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>"))
	return m
}

// addresses formats an address-list header, decoding encoded names; a list
// that does not parse is returned decoded, as one entry.
func addresses(v string) []string {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	p := mail.AddressParser{WordDecoder: wordDecoder}
	list, err := p.ParseList(v)
	if err != nil {
		return []string{decodeWords(v)}
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		if a.Name != "" {
			out = append(out, clean(a.Name)+" <"+a.Address+">")
		} else {
			out = append(out, a.Address)
		}
	}
	return out
}

func decodeWords(v string) string {
	s, err := wordDecoder.DecodeHeader(v)
	if err != nil {
		s = v
	}
	return clean(strings.TrimSpace(s))
}

// clean makes s valid UTF-8 without control characters other than tab.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func decodedHeader(h mail.Header) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		for _, v := range vs {
			out[k] = append(out[k], decodeWords(v))
		}
	}
	return out
}

type header interface{ Get(string) string }

// textBody finds the text/plain content of an entity with header h and body
// r, walking multiparts depth-first. ok is false when there is none.
func textBody(h header, r io.Reader, depth int) (text string, ok bool, err error) {
	mediaType, params := "text/plain", map[string]string{}
	if ct := h.Get("Content-Type"); strings.TrimSpace(ct) != "" {
		mt, p, perr := mime.ParseMediaType(ct)
		if perr != nil && mt == "" {
			// RFC 2045: an unreadable Content-Type means text/plain.
			mt, p = "text/plain", map[string]string{}
		}
		mediaType, params = mt, p
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		if depth >= maxDepth {
			return "", false, fmt.Errorf("multipart nested more than %d deep", maxDepth)
		}
		boundary := params["boundary"]
		if boundary == "" {
			return "", false, errors.New("multipart without a boundary")
		}
		mr := multipart.NewReader(r, boundary)
		for range maxParts {
			part, err := mr.NextPart()
			if err == io.EOF {
				return "", false, nil
			}
			if err != nil {
				return "", false, err
			}
			text, ok, err := textBody(part.Header, part, depth+1)
			if err != nil || ok {
				return text, ok, err
			}
		}
		return "", false, fmt.Errorf("more than %d parts", maxParts)
	}
	if mediaType != "text/plain" {
		return "", false, nil
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &skipSpace{r: r})
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxMailBytes))
	if err != nil {
		return "", false, err
	}
	s, err := toUTF8(b, params["charset"])
	if err != nil {
		return "", false, err
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return s, true, nil
}

// toUTF8 converts text in charset to UTF-8: UTF-8 and ASCII as they are
// (invalid bytes replaced), Latin-1 by code point.
func toUTF8(b []byte, charset string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(charset)) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return strings.ToValidUTF8(string(b), "\uFFFD"), nil
	case "iso-8859-1", "latin1", "iso_8859-1", "windows-1252", "cp1252":
		return latin1(b), nil
	}
	if utf8.Valid(b) {
		return string(b), nil
	}
	return "", fmt.Errorf("unsupported charset %q", charset)
}

func latin1(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxHeaderBytes))
	if err != nil {
		return nil, err
	}
	s, err := toUTF8(b, charset)
	if err != nil {
		return nil, err
	}
	return strings.NewReader(s), nil
}

// skipSpace drops the line breaks and spaces base64 bodies are wrapped with.
type skipSpace struct{ r io.Reader }

func (s *skipSpace) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}
