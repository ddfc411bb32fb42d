package outbox

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"
)

// conflictRetries is how many times a statement that lost a lock conflict
// is run again before its error is returned.
const conflictRetries = 5

// retryConflicts runs f, again when it fails with a lock conflict the
// database resolved by aborting it (a deadlock victim, a serialization
// failure, a busy SQLite). Concurrent relays over one table cause such
// conflicts now and then; the statement is correct and succeeds when run
// again.
func retryConflicts(ctx context.Context, f func() error) error {
	var err error
	for i := range conflictRetries {
		if err = f(); err == nil || !conflict(err) {
			return err
		}
		d := time.Duration(5<<i)*time.Millisecond + rand.N(5*time.Millisecond)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
	return err
}

// conflict reports whether err is a lock conflict worth retrying:
// PostgreSQL's serialization_failure, deadlock_detected and
// lock_not_available; MySQL/MariaDB's deadlock (1213) and lock wait timeout
// (1205); SQLite's busy database.
func conflict(err error) bool {
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		switch pg.SQLState() {
		case "40001", "40P01", "55P03":
			return true
		}
	}
	msg := err.Error()
	for _, s := range []string{"Error 1213 ", "Error 1205 ", "database is locked", "SQLITE_BUSY"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
