package middleware

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// DedupeRecord is the row of a [SQLDedupeStore]: one processed (or being
// processed) key.
type DedupeRecord struct {
	Key          string    `gorm:"column:dedupe_key;primaryKey;size:191"`
	Owner        string    `gorm:"size:64;not null"`
	Done         bool      `gorm:"not null;default:false"`
	ClaimedUntil time.Time `gorm:"not null"`
	DoneAt       *time.Time
}

// TableName is the table of the records.
func (DedupeRecord) TableName() string { return "herald_dedupe" }

// SQLDedupeStore is a [DedupeStore] in a SQL database through gorm (SQLite,
// MySQL/MariaDB, PostgreSQL), shared safely by every process that uses the
// database: claims are single statements, atomic on each of them.
type SQLDedupeStore struct {
	db *gorm.DB
}

var _ DedupeStore = (*SQLDedupeStore)(nil)

// NewSQLDedupeStore returns a store in db, creating its table when missing.
func NewSQLDedupeStore(ctx context.Context, db *gorm.DB) (*SQLDedupeStore, error) {
	if err := db.WithContext(ctx).AutoMigrate(&DedupeRecord{}); err != nil {
		return nil, fmt.Errorf("dedupe: migrate: %w", err)
	}
	return &SQLDedupeStore{db: db}, nil
}

// Claim implements [DedupeStore]: insert the key, or take over a claim that
// expired, or report what holds it.
func (s *SQLDedupeStore) Claim(ctx context.Context, key, owner string, ttl time.Duration) (ClaimResult, error) {
	if len(key) > 191 {
		return 0, fmt.Errorf("dedupe: key is %d bytes, more than 191", len(key))
	}
	db := s.db.WithContext(ctx)
	now := time.Now().UTC()
	ins := db.Clauses(clause.OnConflict{DoNothing: true}).
		Create(&DedupeRecord{Key: key, Owner: owner, ClaimedUntil: now.Add(ttl)})
	if ins.Error != nil {
		return 0, ins.Error
	}
	if ins.RowsAffected == 1 {
		return Claimed, nil
	}
	took := db.Model(&DedupeRecord{}).
		Where("dedupe_key = ? AND done = ? AND claimed_until < ?", key, false, now).
		Updates(map[string]any{"owner": owner, "claimed_until": now.Add(ttl)})
	if took.Error != nil {
		return 0, took.Error
	}
	if took.RowsAffected == 1 {
		return Claimed, nil
	}
	var r DedupeRecord
	if err := db.Where("dedupe_key = ?", key).Take(&r).Error; err != nil {
		return 0, err
	}
	if r.Done {
		return Done, nil
	}
	return Busy, nil
}

// Complete implements [DedupeStore].
func (s *SQLDedupeStore) Complete(ctx context.Context, key, owner string) error {
	now := time.Now().UTC()
	return s.db.WithContext(ctx).Model(&DedupeRecord{}).
		Where("dedupe_key = ? AND owner = ?", key, owner).
		Updates(map[string]any{"done": true, "done_at": &now}).Error
}

// Release implements [DedupeStore].
func (s *SQLDedupeStore) Release(ctx context.Context, key, owner string) error {
	return s.db.WithContext(ctx).
		Where("dedupe_key = ? AND owner = ? AND done = ?", key, owner, false).
		Delete(&DedupeRecord{}).Error
}

// Forget deletes the done keys recorded before t, to bound the table. A
// message redelivered after its key was forgotten is handled again.
func (s *SQLDedupeStore) Forget(ctx context.Context, before time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("done = ? AND done_at < ?", true, before.UTC()).Delete(&DedupeRecord{})
	return res.RowsAffected, res.Error
}
