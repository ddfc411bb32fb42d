package broker

import (
	"maps"
	"time"
)

// Message is what is published and delivered.
//
// On publish, only ID, Header and Body are read. On delivery the backend also
// sets Topic, Attempt and PublishedAt. A handler must not keep a Message after
// it returns.
type Message struct {
	// ID identifies the message end to end; redeliveries and dead letters
	// keep it. Publish sets it when empty (see [NewID]).
	ID string
	// Header carries metadata as text. Names are case-sensitive; names that
	// start with "herald-" are reserved for Herald. On delivery Header may be
	// nil when the message has none: read it with [Header.Get].
	Header Header
	// Body is the payload, opaque to the broker. It may be empty.
	Body []byte

	// Topic is the topic the message was published to (delivery only).
	Topic string
	// Attempt counts deliveries of this message to its group or subscriber,
	// starting at 1 (delivery only).
	Attempt int
	// PublishedAt is when the broker accepted the message (delivery only).
	PublishedAt time.Time
}

// Header is a message's metadata: text names mapped to text values.
type Header map[string]string

// Get returns the value of name, or "" when it is absent. It is safe on a nil
// Header.
func (h Header) Get(name string) string { return h[name] }

// Clone returns a copy of m whose Header and Body share no memory with m's.
func (m *Message) Clone() *Message {
	c := *m
	c.Header = maps.Clone(m.Header)
	if m.Body != nil {
		c.Body = append(make([]byte, 0, len(m.Body)), m.Body...)
	}
	return &c
}

// Reserved header names carried by every backend that cannot carry the
// message's metadata natively. Backends use them to move the fields of
// [Message] across the wire; they are removed from Header on delivery.
const (
	HeaderID          = "herald-id"
	HeaderPublishedAt = "herald-published-at"
)
