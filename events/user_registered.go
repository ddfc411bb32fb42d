package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/mail"
	"time"
	"unicode/utf8"

	"github.com/herald-dev/herald/broker"
)

// User registration event: its topic and CloudEvents type.
const (
	TopicUserRegistered = "user.registered"
	TypeUserRegistered  = "dev.herald.user.registered.v1"
)

// QueueEmail is the queue group in which the email service consumes
// [TopicUserRegistered]. It is here, beside the topic, because the
// publisher needs it too: the user service declares the group at start
// (broker.DeclareGroup), so that an event it publishes before the email
// service first subscribes is kept for it.
const QueueEmail = "email"

// MaxEventBody bounds the body a decoder accepts.
const MaxEventBody = 64 << 10

// UserRegistered is published once a user is stored. It has no password and
// no hash, by construction.
type UserRegistered struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Email        string    `json:"email"`
	RegisteredAt time.Time `json:"registered_at"`
}

// NewUserRegistered returns the message announcing u, from source (a URI
// reference naming the producer, such as "herald/user").
func NewUserRegistered(source string, u UserRegistered) (*broker.Message, error) {
	data, err := json.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("events: encode %s: %w", TypeUserRegistered, err)
	}
	return newMessage(TypeUserRegistered, source, u.RegisteredAt, data), nil
}

// DecodeUserRegistered decodes and validates the event in m. Every error
// wraps [ErrBadEvent].
func DecodeUserRegistered(m *broker.Message) (UserRegistered, error) {
	var u UserRegistered
	if err := checkAttributes(m, TypeUserRegistered); err != nil {
		return u, err
	}
	if len(m.Body) > MaxEventBody {
		return u, fmt.Errorf("%w: body is %d bytes, more than %d", ErrBadEvent, len(m.Body), MaxEventBody)
	}
	dec := json.NewDecoder(bytes.NewReader(m.Body))
	if err := dec.Decode(&u); err != nil {
		return UserRegistered{}, fmt.Errorf("%w: body: %v", ErrBadEvent, err)
	}
	if dec.More() {
		return UserRegistered{}, fmt.Errorf("%w: body has data after the JSON object", ErrBadEvent)
	}
	switch {
	case u.ID == "":
		return UserRegistered{}, fmt.Errorf("%w: id is missing", ErrBadEvent)
	case u.Email == "":
		return UserRegistered{}, fmt.Errorf("%w: email is missing", ErrBadEvent)
	case u.RegisteredAt.IsZero():
		return UserRegistered{}, fmt.Errorf("%w: registered_at is missing", ErrBadEvent)
	case !utf8.ValidString(u.Name) || !utf8.ValidString(u.Email):
		return UserRegistered{}, fmt.Errorf("%w: name or email is not UTF-8", ErrBadEvent)
	}
	if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
		return UserRegistered{}, fmt.Errorf("%w: email %q is not a plain address", ErrBadEvent, u.Email)
	}
	return u, nil
}
