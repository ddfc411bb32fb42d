package redis

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/herald-dev/herald/broker"
)

// Fields of a stream entry. A message is stored readably, one field per
// header, so XRANGE shows it as it is:
//
//	id   <message ID>
//	b    <body>
//	h:<name> <value>   (one per header)
//
// Its publication time is the entry ID's, taken from the server's clock.
const (
	fieldID     = "id"
	fieldBody   = "b"
	headerField = "h:"
	// fieldRedo is the only field of an entry in a group's redo stream: the
	// whole message, attempt included, encoded by [encodeRedo].
	fieldRedo = "m"
)

// entryValues returns the XADD field-value list of m.
func entryValues(m *broker.Message) []any {
	v := make([]any, 0, 4+2*len(m.Header))
	v = append(v, fieldID, m.ID, fieldBody, m.Body)
	for k, val := range m.Header {
		if k == broker.HeaderID || k == broker.HeaderPublishedAt {
			continue
		}
		v = append(v, headerField+k, val)
	}
	return v
}

// entrySize is about how many bytes m takes in a stream.
func entrySize(m *broker.Message) int {
	n := len(m.ID) + len(m.Body) + 8
	for k, v := range m.Header {
		n += len(k) + len(v) + 4
	}
	return n
}

// decodeEntry returns the message stored in a topic stream's entry.
func decodeEntry(topic, entryID string, values map[string]any) *broker.Message {
	m := &broker.Message{Topic: topic, PublishedAt: entryTime(entryID)}
	for k, v := range values {
		s := str(v)
		switch {
		case k == fieldID:
			m.ID = s
		case k == fieldBody:
			m.Body = []byte(s)
		case strings.HasPrefix(k, headerField):
			if m.Header == nil {
				m.Header = make(broker.Header, len(values)-2)
			}
			m.Header[k[len(headerField):]] = s
		}
	}
	if m.ID == "" {
		// Not written by Herald: the entry ID is the best ID there is.
		m.ID = "redis:" + entryID
	}
	if m.Body == nil {
		m.Body = []byte{}
	}
	return m
}

func str(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	case nil:
		return ""
	}
	return ""
}

// entryTime returns the time in a stream entry ID ("<ms>-<seq>").
func entryTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// redo is a message on its way back to its group, with the attempt its next
// delivery is.
type redo struct {
	m       *broker.Message // ID, Header, Body, PublishedAt
	attempt int
	nonce   string // makes equal messages distinct members of the delay set
}

const redoVersion = 1

// encodeRedo encodes r: a version byte, then uvarint-length-prefixed
// strings and uvarints. It carries any bytes as they are.
func encodeRedo(r redo) string {
	m := r.m
	n := 32 + len(m.ID) + len(m.Body) + len(r.nonce)
	for k, v := range m.Header {
		n += len(k) + len(v) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, redoVersion)
	b = appendString(b, r.nonce)
	b = appendString(b, m.ID)
	var ns int64
	if !m.PublishedAt.IsZero() {
		ns = m.PublishedAt.UnixNano()
	}
	b = binary.AppendVarint(b, ns)
	b = binary.AppendUvarint(b, uint64(max(r.attempt, 1)))
	b = binary.AppendUvarint(b, uint64(len(m.Header)))
	for k, v := range m.Header {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	b = appendString(b, string(m.Body))
	return string(b)
}

var errBadRedo = errors.New("redis: malformed redelivery entry")

// decodeRedo decodes what [encodeRedo] made; the message's Topic is topic.
func decodeRedo(topic, s string) (redo, error) {
	d := decoder{s: s}
	if d.byte() != redoVersion {
		return redo{}, errBadRedo
	}
	r := redo{m: &broker.Message{Topic: topic}}
	r.nonce = d.string()
	r.m.ID = d.string()
	if ns := d.varint(); ns != 0 {
		r.m.PublishedAt = time.Unix(0, ns)
	}
	r.attempt = int(d.uvarint())
	if nh := d.uvarint(); nh > 0 && nh <= uint64(len(s)) {
		r.m.Header = make(broker.Header, nh)
		for range nh {
			k := d.string()
			r.m.Header[k] = d.string()
		}
	}
	r.m.Body = []byte(d.string())
	if d.bad || r.attempt < 1 {
		return redo{}, errBadRedo
	}
	return r, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type decoder struct {
	s   string
	bad bool
}

func (d *decoder) byte() byte {
	if d.bad || len(d.s) == 0 {
		d.bad = true
		return 0
	}
	c := d.s[0]
	d.s = d.s[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint([]byte(d.s[:min(len(d.s), binary.MaxVarintLen64)]))
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.s = d.s[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.bad {
		return 0
	}
	v, n := binary.Varint([]byte(d.s[:min(len(d.s), binary.MaxVarintLen64)]))
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.s = d.s[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.s)) {
		d.bad = true
		return ""
	}
	s := d.s[:n]
	d.s = d.s[n:]
	return s
}
