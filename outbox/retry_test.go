package outbox

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

type sqlStateErr string

func (e sqlStateErr) Error() string    { return "pg: " + string(e) }
func (e sqlStateErr) SQLState() string { return string(e) }

func TestRetryConflicts(t *testing.T) {
	conflicts := []error{
		fmt.Errorf("claim: %w", sqlStateErr("40P01")),
		sqlStateErr("40001"),
		errors.New("Error 1213 (40001): Deadlock found when trying to get lock; try restarting transaction"),
		errors.New("Error 1205 (HY000): Lock wait timeout exceeded"),
		errors.New("database is locked (5) (SQLITE_BUSY)"),
	}
	for _, c := range conflicts {
		calls := 0
		err := retryConflicts(context.Background(), func() error {
			calls++
			if calls < 3 {
				return c
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Errorf("%v: retried %d times, err %v; want success on the 3rd call", c, calls, err)
		}
	}
	for _, other := range []error{sqlStateErr("23505"), errors.New("Error 1062 (23000): Duplicate entry"), errors.New("connection refused")} {
		calls := 0
		err := retryConflicts(context.Background(), func() error { calls++; return other })
		if !errors.Is(err, other) || calls != 1 {
			t.Errorf("%v: called %d times; want once, not retried", other, calls)
		}
	}
	calls := 0
	err := retryConflicts(context.Background(), func() error { calls++; return sqlStateErr("40001") })
	if err == nil || calls != conflictRetries {
		t.Errorf("a lasting conflict: %d calls, err %v; want %d calls and the error", calls, err, conflictRetries)
	}
}
