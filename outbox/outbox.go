package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/herald-dev/herald/broker"
)

// Table is the name of the outbox table.
const Table = "herald_outbox"

// MaxIDLength bounds the ID of a message added to the outbox.
const MaxIDLength = 255

// ErrInvalid is wrapped by [Add] for a message it cannot store.
var ErrInvalid = errors.New("outbox: invalid message")

// row is one pending message in the outbox table.
type row struct {
	// Seq orders the rows: insertion order.
	Seq uint64 `gorm:"column:seq;primaryKey;autoIncrement"`
	// MsgID is the message ID, unique: a message cannot be added twice.
	MsgID  string `gorm:"column:msg_id;size:255;not null;uniqueIndex:herald_outbox_msg_id"`
	Topic  string `gorm:"column:topic;size:200;not null"`
	Header string `gorm:"column:header;type:text;not null"`
	Body   []byte `gorm:"column:body"`
	// CreatedAt is when Add ran (UTC).
	CreatedAt time.Time `gorm:"column:created_at;not null"`
	// Attempts counts failed publishes.
	Attempts int `gorm:"column:attempts;not null;default:0"`
	// NextAttemptAt is when the row is due: its creation, or after a failed
	// publish, the end of its backoff.
	NextAttemptAt time.Time `gorm:"column:next_attempt_at;not null;index:herald_outbox_due"`
	// ClaimedUntil is the end of the lease of the relay publishing the row
	// (NULL when unclaimed).
	ClaimedUntil *time.Time `gorm:"column:claimed_until"`
	// ClaimedBy is the token of that claim.
	ClaimedBy string `gorm:"column:claimed_by;size:64;not null;default:''"`
	// LastError is why the last publish failed.
	LastError string `gorm:"column:last_error;size:1024;not null;default:''"`
}

// TableName implements gorm's Tabler.
func (row) TableName() string { return Table }

// Migrate creates or updates the outbox table in db.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if err := db.WithContext(ctx).AutoMigrate(&row{}); err != nil {
		return fmt.Errorf("outbox: migrate: %w", err)
	}
	return nil
}

// Add writes m, to be published to topic, into the outbox through tx: call
// it inside the transaction that makes the change m announces, so that both
// commit or neither does. When m.ID is empty Add sets it (see
// [broker.NewID]), so the caller learns the ID. The ID, headers and body are
// published as stored.
//
// The topic and message are validated as [broker.Broker.Publish] would, and
// header names and values must be valid UTF-8 (headers are text); the error
// then wraps [ErrInvalid].
func Add(tx *gorm.DB, topic string, m *broker.Message) error {
	if _, err := broker.NewPublishOptions(topic, m); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(m.ID) > MaxIDLength {
		return fmt.Errorf("%w: message id is %d bytes, more than %d", ErrInvalid, len(m.ID), MaxIDLength)
	}
	for k, v := range m.Header {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			// JSON would replace the bad bytes: refuse rather than alter.
			return fmt.Errorf("%w: header %q is not valid UTF-8 text", ErrInvalid, k)
		}
	}
	header, err := json.Marshal(m.Header)
	if err != nil {
		return fmt.Errorf("%w: header: %w", ErrInvalid, err)
	}
	if m.ID == "" {
		m.ID = broker.NewID()
	}
	now := tx.NowFunc().UTC().Truncate(time.Millisecond)
	r := row{
		MsgID:         m.ID,
		Topic:         topic,
		Header:        string(header),
		Body:          m.Body,
		CreatedAt:     now,
		NextAttemptAt: now,
	}
	if err := tx.Create(&r).Error; err != nil {
		return fmt.Errorf("outbox: add %s to %q: %w", m.ID, topic, err)
	}
	return nil
}

// message rebuilds the stored message.
func (r *row) message() (*broker.Message, error) {
	var h broker.Header
	if err := json.Unmarshal([]byte(r.Header), &h); err != nil {
		return nil, fmt.Errorf("outbox: row %d (message %s) header: %w", r.Seq, r.MsgID, err)
	}
	return &broker.Message{ID: r.MsgID, Header: h, Body: r.Body}, nil
}
