package nats

import (
	"encoding/base64"
	"strings"

	"github.com/herald-dev/herald/broker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// headerEscaped carries the header pairs NATS cannot carry as they are, one
// value per pair: base64url(name) + "." + base64url(value). It is in the
// reserved "herald-" space and never reaches a handler.
const headerEscaped = "herald-hdr"

// natsHeaderPrefix starts the header names NATS and JetStream interpret
// (Nats-Msg-Id, Nats-Expected-Stream, Nats-TTL, Nats-Rollup…). A user header
// with such a name is escaped so that it cannot steer the server.
const natsHeaderPrefix = "nats-"

// encodeHeader returns the NATS headers of m, to be published under the
// deduplication ID msgID.
//
// Names and values that NATS carries unchanged go as they are; the others
// (names with characters NATS refuses or starting with "Nats-", values with
// CR or LF or surrounding white space, which NATS would alter) travel escaped
// in [headerEscaped], so every header arrives byte for byte. The reserved
// [broker.HeaderID] and [broker.HeaderPublishedAt] given by the caller are
// dropped: the backend sets them.
func encodeHeader(m *broker.Message, msgID string) nats.Header {
	h := make(nats.Header, len(m.Header)+2)
	for k, v := range m.Header {
		if k == broker.HeaderID || k == broker.HeaderPublishedAt {
			continue
		}
		if safeName(k) && safeValue(v) {
			h[k] = []string{v}
			continue
		}
		h[headerEscaped] = append(h[headerEscaped], escapePair(k, v))
	}
	if msgID != m.ID {
		// The stored Nats-Msg-Id is not the ID (a replay or a dead letter,
		// or an ID NATS cannot carry): say what the ID is.
		if safeValue(m.ID) {
			h[broker.HeaderID] = []string{m.ID}
		} else {
			h[headerEscaped] = append(h[headerEscaped], escapePair(broker.HeaderID, m.ID))
		}
	}
	h[jetstream.MsgIDHeader] = []string{msgID}
	return h
}

// dedupeID returns the Nats-Msg-Id of m. JetStream drops a message whose
// Nats-Msg-Id it stored within the stream's duplicate window: that is wanted
// for a re-publish of the same event (an outbox relay retrying), and wrong for
// a deliberate replay of a dead letter ([broker.HeaderReplayedAt]) or for a
// second dead letter of the same message (another queue group giving up on
// it): those get an ID of their own.
func dedupeID(m *broker.Message) string {
	id := m.ID
	if !safeValue(id) {
		id = "b64:" + base64.RawURLEncoding.EncodeToString([]byte(id))
	}
	if t := m.Header[broker.HeaderDeadLetterTime]; t != "" {
		id += "/dlq/" + m.Header[broker.HeaderDeadLetterQueue] + "/" + t
	} else if t := m.Header[broker.HeaderReplayedAt]; t != "" {
		id += "/replay/" + t
	}
	if !safeValue(id) {
		id = "b64:" + base64.RawURLEncoding.EncodeToString([]byte(id))
	}
	return id
}

// decodeHeader returns the message ID and the Herald headers of a delivered
// message: every header but the Nats-* ones, with escaped pairs restored and
// the reserved ID headers removed. The Header is nil when there are none
// (most messages: it saves an allocation per delivery).
func decodeHeader(nh nats.Header) (id string, h broker.Header) {
	set := func(k, v string) {
		if h == nil {
			h = make(broker.Header, len(nh))
		}
		h[k] = v
	}
	for k, vs := range nh {
		if len(vs) == 0 {
			continue
		}
		switch {
		case k == headerEscaped:
			for _, v := range vs {
				if name, value, ok := unescapePair(v); ok {
					set(name, value)
				}
			}
		case hasPrefixFold(k, natsHeaderPrefix):
			if k == jetstream.MsgIDHeader && id == "" {
				id = vs[0]
			}
		default:
			set(k, vs[0])
		}
	}
	if v, ok := h[broker.HeaderID]; ok {
		id = v
		delete(h, broker.HeaderID)
	}
	delete(h, broker.HeaderPublishedAt)
	if len(h) == 0 {
		h = nil
	}
	return id, h
}

// wireSize is how many bytes m takes on the wire under the deduplication ID
// msgID: its body and the headers encodeHeader would give it, counted
// without building them.
func wireSize(m *broker.Message, msgID string) int {
	escaped := func(k, v string) int {
		return len(headerEscaped) + base64.RawURLEncoding.EncodedLen(len(k)) + 1 + base64.RawURLEncoding.EncodedLen(len(v)) + 4
	}
	n := len("NATS/1.0\r\n\r\n") + len(m.Body)
	for k, v := range m.Header {
		switch {
		case k == broker.HeaderID || k == broker.HeaderPublishedAt:
		case safeName(k) && safeValue(v):
			n += len(k) + len(v) + 4
		default:
			n += escaped(k, v)
		}
	}
	if msgID != m.ID {
		if safeValue(m.ID) {
			n += len(broker.HeaderID) + len(m.ID) + 4
		} else {
			n += escaped(broker.HeaderID, m.ID)
		}
	}
	return n + len(jetstream.MsgIDHeader) + len(msgID) + 4
}

// headerSize is how many bytes h takes on the wire, as nats.go writes it.
func headerSize(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

func escapePair(name, value string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(name)) + "." + base64.RawURLEncoding.EncodeToString([]byte(value))
}

func unescapePair(s string) (name, value string, ok bool) {
	n, v, ok := strings.Cut(s, ".")
	if !ok {
		return "", "", false
	}
	nb, err1 := base64.RawURLEncoding.DecodeString(n)
	vb, err2 := base64.RawURLEncoding.DecodeString(v)
	if err1 != nil || err2 != nil {
		return "", "", false
	}
	return string(nb), string(vb), true
}

// safeName reports whether NATS carries k as a header name unchanged and
// without giving it a meaning: printable ASCII without the characters
// nats.go refuses, not one of NATS's own names, not Herald's escape header.
func safeName(k string) bool {
	if k == "" || k == headerEscaped || hasPrefixFold(k, natsHeaderPrefix) {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c < 33 || c > 126 || strings.IndexByte("\"()/,:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// safeValue reports whether NATS carries v as a header value unchanged:
// nats.go trims surrounding white space and turns CR and LF into spaces.
func safeValue(v string) bool {
	if v == "" {
		return true
	}
	if isSpace(v[0]) || isSpace(v[len(v)-1]) {
		return false
	}
	return strings.IndexByte(v, '\r') < 0 && strings.IndexByte(v, '\n') < 0
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
