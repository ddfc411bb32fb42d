package events

import (
	"errors"
	"fmt"
	"time"

	"github.com/herald-dev/herald/broker"
)

// CloudEvents attribute headers (binary content mode).
const (
	HeaderID          = "ce-id"
	HeaderSource      = "ce-source"
	HeaderType        = "ce-type"
	HeaderSpecVersion = "ce-specversion"
	HeaderTime        = "ce-time"
	HeaderContentType = "content-type"
)

// SpecVersion is the CloudEvents version Herald writes.
const SpecVersion = "1.0"

// ContentTypeJSON is the content type of every Herald event body.
const ContentTypeJSON = "application/json"

// ErrBadEvent is wrapped by every decoding error: the message is not a valid
// event of the expected type. Retrying cannot fix it, so consumers should
// wrap it with [broker.Permanent].
var ErrBadEvent = errors.New("events: bad event")

// newMessage builds the message of a CloudEvent of eventType from source,
// with the JSON body data, at t.
func newMessage(eventType, source string, t time.Time, data []byte) *broker.Message {
	id := broker.NewID()
	return &broker.Message{
		ID: id,
		Header: broker.Header{
			HeaderID:          id,
			HeaderSource:      source,
			HeaderType:        eventType,
			HeaderSpecVersion: SpecVersion,
			HeaderTime:        t.UTC().Format(time.RFC3339Nano),
			HeaderContentType: ContentTypeJSON,
		},
		Body: data,
	}
}

// checkAttributes verifies the CloudEvents attributes of m for eventType.
func checkAttributes(m *broker.Message, eventType string) error {
	h := m.Header
	switch {
	case h.Get(HeaderSpecVersion) != SpecVersion:
		return fmt.Errorf("%w: %s is %q, want %q", ErrBadEvent, HeaderSpecVersion, h.Get(HeaderSpecVersion), SpecVersion)
	case h.Get(HeaderType) != eventType:
		return fmt.Errorf("%w: %s is %q, want %q", ErrBadEvent, HeaderType, h.Get(HeaderType), eventType)
	case h.Get(HeaderID) == "":
		return fmt.Errorf("%w: %s is missing", ErrBadEvent, HeaderID)
	case h.Get(HeaderSource) == "":
		return fmt.Errorf("%w: %s is missing", ErrBadEvent, HeaderSource)
	case h.Get(HeaderContentType) != ContentTypeJSON:
		return fmt.Errorf("%w: %s is %q, want %q", ErrBadEvent, HeaderContentType, h.Get(HeaderContentType), ContentTypeJSON)
	}
	if _, err := time.Parse(time.RFC3339Nano, h.Get(HeaderTime)); err != nil {
		return fmt.Errorf("%w: %s %q is not RFC 3339", ErrBadEvent, HeaderTime, h.Get(HeaderTime))
	}
	return nil
}
