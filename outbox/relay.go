package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/herald-dev/herald/broker"
)

// Relay publishes the rows of the outbox table to a broker. Several relays
// may run over one database (see the package documentation for the
// guarantees). A Relay is safe for concurrent use; [Relay.Run] is called
// once.
type Relay struct {
	db   *gorm.DB
	b    broker.Broker
	o    options
	wake chan struct{}
}

// NewRelay returns a relay that publishes the outbox rows of db to b. It
// does not touch the database: call [Migrate] first, then [Relay.Run].
func NewRelay(db *gorm.DB, b broker.Broker, opts ...Option) (*Relay, error) {
	if db == nil || b == nil {
		return nil, invalid("NewRelay needs a database and a broker")
	}
	o := defaults()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.publishTimeout >= o.lease {
		return nil, invalid("publish timeout %v must be shorter than the lease %v", o.publishTimeout, o.lease)
	}
	return &Relay{db: db, b: b, o: o, wake: make(chan struct{}, 1)}, nil
}

// Notify wakes the relay at once, to publish what was just committed. It
// never blocks; wake-ups that come while the relay is busy are merged.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run publishes the outbox until ctx is done, then returns nil. It claims
// and publishes batches while there are due rows, then waits for
// [Relay.Notify] or the poll interval. Database and broker errors are
// logged and retried; they do not end Run.
func (r *Relay) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-timer.C:
		}
		wait := r.o.poll
		for ctx.Err() == nil {
			n, err := r.Once(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				failures++
				r.o.log.Warn("outbox: relay failed; retrying", "err", err, "failures", failures)
				// A broker or database outage: back off, but never wait
				// longer than the poll interval.
				wait = min(r.o.poll, max(r.o.backoff.Delay(failures), 10*time.Millisecond))
				break
			}
			failures = 0
			if n < r.o.batch {
				break
			}
		}
		timer.Reset(wait)
	}
}

// Once claims one batch of due rows, publishes it, and deletes what the
// broker accepted. It returns how many rows it claimed, and an error when
// the claim or the publish failed (the rows then stay pending and are
// retried after their backoff). [Relay.Run] calls it in a loop; tests and
// tools may call it directly.
func (r *Relay) Once(ctx context.Context) (int, error) {
	rows, token, err := r.claim(ctx)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	// Publishing and recording the outcome must finish even when ctx ends
	// now: the publish under its own timeout (shorter than the lease), the
	// bookkeeping under a short one.
	pubCtx, cancel := context.WithTimeout(ctx, r.o.publishTimeout)
	sent, failed, pubErr := r.publish(pubCtx, rows)
	cancel()
	bookCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var errs []error
	if pubErr != nil {
		errs = append(errs, pubErr)
	}
	if err := r.markSent(bookCtx, token, sent); err != nil {
		errs = append(errs, err)
	}
	if err := r.release(bookCtx, token, failed, pubErr); err != nil {
		errs = append(errs, err)
	}
	return len(rows), errors.Join(errs...)
}

// claim leases up to a batch of due rows to a new claim token.
func (r *Relay) claim(ctx context.Context) (rows []row, token string, err error) {
	err = retryConflicts(ctx, func() error {
		rows, token, err = r.claimOnce(ctx)
		return err
	})
	return rows, token, err
}

func (r *Relay) claimOnce(ctx context.Context) ([]row, string, error) {
	db := r.db.WithContext(ctx)
	now := r.now()
	until := now.Add(r.o.lease)
	token := broker.NewID()
	due := "next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)"
	var rows []row
	if db.Dialector.Name() == "sqlite" {
		// SQLite has one writer at a time: this one statement selects and
		// claims atomically, then the claimed rows are read back by token.
		err := db.Exec("UPDATE "+Table+" SET claimed_by = ?, claimed_until = ? WHERE seq IN (SELECT seq FROM "+Table+" WHERE "+due+" ORDER BY seq LIMIT ?)",
			token, until, now, now, r.o.batch).Error
		if err != nil {
			return nil, "", fmt.Errorf("outbox: claim: %w", err)
		}
		if err := db.Where("claimed_by = ?", token).Order("seq").Find(&rows).Error; err != nil {
			return nil, "", fmt.Errorf("outbox: read claimed rows: %w", err)
		}
		return rows, token, nil
	}
	// MySQL/MariaDB and PostgreSQL: rows locked by another relay's claim
	// transaction are skipped, not waited for. READ COMMITTED (PostgreSQL's
	// default) keeps InnoDB from locking the gaps between rows, which would
	// make concurrent claims and deletes deadlock.
	err := db.Transaction(func(tx *gorm.DB) error {
		err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate, Options: clause.LockingOptionsSkipLocked}).
			Where(due, now, now).Order("seq").Limit(r.o.batch).Find(&rows).Error
		if err != nil || len(rows) == 0 {
			return err
		}
		return tx.Model(&row{}).Where("seq IN ?", seqs(rows)).
			Updates(map[string]any{"claimed_by": token, "claimed_until": until}).Error
	}, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return nil, "", fmt.Errorf("outbox: claim: %w", err)
	}
	return rows, token, nil
}

// publish publishes rows, grouped into runs of one topic in insertion
// order, and says which were accepted.
func (r *Relay) publish(ctx context.Context, rows []row) (sent, failed []row, err error) {
	var errs []error
	for start := 0; start < len(rows); {
		end := start + 1
		for end < len(rows) && rows[end].Topic == rows[start].Topic {
			end++
		}
		run := rows[start:end]
		start = end
		ms := make([]*broker.Message, 0, len(run))
		ok := make([]row, 0, len(run))
		for i := range run {
			m, err := run[i].message()
			if err != nil {
				// A row this package wrote cannot be unreadable unless the
				// table was edited by hand: keep it, visible in the backlog.
				errs = append(errs, err)
				failed = append(failed, run[i])
				continue
			}
			ms = append(ms, m)
			ok = append(ok, run[i])
		}
		if len(ms) == 0 {
			continue
		}
		topic := run[0].Topic
		if err := broker.PublishBatch(ctx, r.b, topic, ms); err != nil {
			errs = append(errs, fmt.Errorf("outbox: publish %d messages to %q: %w", len(ms), topic, err))
			failed = append(failed, ok...)
			for _, x := range ok {
				r.o.log.Warn("outbox: publish failed", "topic", topic, "msg_id", x.MsgID, "attempt", x.Attempts+1, "err", err)
			}
			continue
		}
		sent = append(sent, ok...)
		r.o.log.Debug("outbox: published", "topic", topic, "count", len(ms), "first_msg_id", ms[0].ID)
	}
	return sent, failed, errors.Join(errs...)
}

// markSent deletes the rows the broker accepted, if this claim still holds
// them.
func (r *Relay) markSent(ctx context.Context, token string, rows []row) error {
	if len(rows) == 0 {
		return nil
	}
	err := retryConflicts(ctx, func() error {
		return r.db.WithContext(ctx).Where("seq IN ? AND claimed_by = ?", seqs(rows), token).Delete(&row{}).Error
	})
	if err != nil {
		return fmt.Errorf("outbox: delete %d published rows: %w", len(rows), err)
	}
	return nil
}

// release gives back the rows whose publish failed, due again after their
// backoff.
func (r *Relay) release(ctx context.Context, token string, rows []row, why error) error {
	if len(rows) == 0 {
		return nil
	}
	reason := "unknown"
	if why != nil {
		reason = why.Error()
	}
	if len(reason) > 1024 {
		reason = strings.ToValidUTF8(reason[:1024], "") // a cut rune would be refused by MySQL
	}
	err := retryConflicts(ctx, func() error { return r.releaseOnce(ctx, token, rows, reason) })
	if err != nil {
		return fmt.Errorf("outbox: release %d rows: %w", len(rows), err)
	}
	return nil
}

func (r *Relay) releaseOnce(ctx context.Context, token string, rows []row, reason string) error {
	now := r.now()
	return r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, x := range rows {
			err := tx.Model(&row{}).Where("seq = ? AND claimed_by = ?", x.Seq, token).Updates(map[string]any{
				"claimed_by":      "",
				"claimed_until":   nil,
				"attempts":        x.Attempts + 1,
				"next_attempt_at": now.Add(r.o.backoff.Delay(x.Attempts + 1)).Truncate(time.Millisecond),
				"last_error":      reason,
			}).Error
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Backlog returns how many rows wait in the outbox (due or not, claimed or
// not) and when the oldest was added (the zero time when none).
func (r *Relay) Backlog(ctx context.Context) (count int, oldest time.Time, err error) {
	db := r.db.WithContext(ctx)
	var n int64
	if err := db.Model(&row{}).Count(&n).Error; err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox: backlog: %w", err)
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	var first []row
	if err := db.Select("seq", "created_at").Order("seq").Limit(1).Find(&first).Error; err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox: backlog: %w", err)
	}
	if len(first) > 0 {
		oldest = first[0].CreatedAt
	}
	return int(n), oldest, nil
}

// now is the database's clock setting, in UTC, to the millisecond that
// every supported engine stores.
func (r *Relay) now() time.Time {
	return r.db.NowFunc().UTC().Truncate(time.Millisecond)
}

func seqs(rows []row) []uint64 {
	s := make([]uint64, len(rows))
	for i := range rows {
		s[i] = rows[i].Seq
	}
	return s
}
