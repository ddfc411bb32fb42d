package middleware

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// DedupeRecord is the row of a [SQLDedupeStore]: one processed (or being
// processed) key.
type DedupeRecord struct {
	Key          DedupeKey `gorm:"column:dedupe_key;primaryKey;size:191"`
	Owner        string    `gorm:"size:64;not null"`
	Done         bool      `gorm:"not null;default:false"`
	ClaimedUntil time.Time `gorm:"not null"`
	DoneAt       *time.Time
}

// DedupeKey is the key column of [DedupeRecord]. It compares byte for byte
// on every database: on MySQL and MariaDB it is VARBINARY(191), because
// their default collations fold case and accents (and MariaDB's ignore
// trailing spaces), which would make "ab" and "AB" one key. Elsewhere it is
// the dialect's string type.
type DedupeKey string

// GormDBDataType picks the column type per dialect (see [DedupeKey]).
func (DedupeKey) GormDBDataType(db *gorm.DB, _ *schema.Field) string {
	if db.Dialector.Name() == "mysql" {
		return "varbinary(191)"
	}
	return "" // the dialect's own
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
	if err := binaryKeyColumn(ctx, db); err != nil {
		return nil, fmt.Errorf("dedupe: migrate: %w", err)
	}
	return &SQLDedupeStore{db: db}, nil
}

// binaryKeyColumn turns the key column of a MySQL/MariaDB table made before
// [DedupeKey] existed (a VARCHAR in a collation that folds case) into
// VARBINARY. gorm's AutoMigrate does not alter primary-key columns. Every
// byte stays as it was, and keys that were distinct stay distinct.
func binaryKeyColumn(ctx context.Context, db *gorm.DB) error {
	if db.Dialector.Name() != "mysql" {
		return nil
	}
	db = db.WithContext(ctx)
	cols, err := db.Migrator().ColumnTypes(&DedupeRecord{})
	if err != nil {
		return err
	}
	for _, c := range cols {
		if c.Name() == "dedupe_key" && !strings.EqualFold(c.DatabaseTypeName(), "varbinary") {
			return db.Exec("ALTER TABLE " + DedupeRecord{}.TableName() + " MODIFY dedupe_key VARBINARY(191) NOT NULL").Error
		}
	}
	return nil
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
		Create(&DedupeRecord{Key: DedupeKey(key), Owner: owner, ClaimedUntil: now.Add(ttl)})
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
