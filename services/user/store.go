package user

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/herald-dev/herald/events"
	"github.com/herald-dev/herald/outbox"
	"github.com/herald-dev/herald/tracing"
)

// Table is the name of the users table.
const Table = "users"

// record is a row of the users table. Only Create writes PasswordHash; reads
// never select it.
type record struct {
	ID    string `gorm:"column:id;primaryKey;size:64"`
	Name  string `gorm:"column:name;size:400;not null"` // 100 characters of up to 4 bytes
	Email string `gorm:"column:email;size:254;not null"`
	// EmailKey makes emails unique regardless of case (see emailKey).
	EmailKey     string    `gorm:"column:email_key;size:64;not null;uniqueIndex:users_email_key"`
	PasswordHash string    `gorm:"column:password_hash;size:60;not null"`
	CreatedAt    time.Time `gorm:"column:created_at;not null"`
}

// TableName implements gorm's Tabler.
func (record) TableName() string { return Table }

// publicColumns are the columns reads select: never the hash.
var publicColumns = []string{"id", "name", "email", "created_at"} //nolint:gochecknoglobals // constant list.

// Errors of the store, mapped to Connect codes by the service.
var (
	errEmailTaken = errors.New("user: email already registered")
	errIDTaken    = errors.New("user: id already taken")
	errNotFound   = errors.New("user: not found")
)

// Migrate creates or updates the user service's tables in db: users and the
// outbox.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if err := db.WithContext(ctx).AutoMigrate(&record{}); err != nil {
		return fmt.Errorf("user: migrate: %w", err)
	}
	return outbox.Migrate(ctx, db)
}

// store reads and writes users through gorm.
type store struct {
	db     *gorm.DB
	source string
	// tracer and prop, when set (see [WithTracing]), write the trace
	// context of the request into its event.
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// newStore returns a store on db. Its statements are never logged, whatever
// logger db has: an INSERT with its values would show the password hash.
func newStore(db *gorm.DB, source string) *store {
	return &store{db: db.Session(&gorm.Session{Logger: logger.Discard}), source: source}
}

// translate turns a driver's error into gorm's portable one
// (gorm.ErrDuplicatedKey…) when db was opened without TranslateError.
func (s *store) translate(err error) error {
	if t, ok := s.db.Dialector.(gorm.ErrorTranslator); ok && err != nil {
		if tr := t.Translate(err); tr != err {
			return tr
		}
	}
	return err
}

// exists reports whether a user matches the condition.
func (s *store) exists(ctx context.Context, query string, arg any) (bool, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&record{}).Where(query, arg).Limit(1).Count(&n).Error
	return n > 0, err
}

// create inserts r and, in the same transaction, its user.registered event
// into the outbox. It returns errEmailTaken or errIDTaken when a unique key
// is taken, even when another create won a race for it.
func (s *store) create(ctx context.Context, r *record) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(r).Error; err != nil {
			return err
		}
		m, err := events.NewUserRegistered(s.source, events.UserRegistered{
			ID: r.ID, Name: r.Name, Email: r.Email, RegisteredAt: r.CreatedAt,
		})
		if err != nil {
			return err
		}
		if s.tracer != nil {
			actx, span := s.tracer.Start(ctx, "outbox add "+events.TopicUserRegistered)
			defer span.End()
			tracing.Inject(actx, s.prop, m)
		}
		return outbox.Add(tx, events.TopicUserRegistered, m)
	})
	if err == nil {
		return nil
	}
	if !errors.Is(s.translate(err), gorm.ErrDuplicatedKey) {
		return err
	}
	// Which key? Asked after the transaction, which a failed statement may
	// have aborted (PostgreSQL).
	if taken, qerr := s.exists(ctx, "id = ?", r.ID); qerr != nil {
		return qerr
	} else if taken {
		return errIDTaken
	}
	return errEmailTaken
}

// get returns the user whose column col equals v, without the hash.
func (s *store) get(ctx context.Context, col string, v string) (record, error) {
	var rs []record
	err := s.db.WithContext(ctx).Select(publicColumns).Where(col+" = ?", v).Limit(1).Find(&rs).Error
	if err != nil {
		return record{}, err
	}
	if len(rs) == 0 {
		return record{}, errNotFound
	}
	return rs[0], nil
}
