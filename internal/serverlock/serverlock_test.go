package serverlock_test

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/internal/serverlock"
)

// TestExclusiveWaitsForUsers: while a user holds the lock, another user
// gets it and a restart does not; while a restart holds it, no user does.
// (flock locks belong to the open file, so a second open in this process
// competes as another process would.)
func TestExclusiveWaitsForUsers(t *testing.T) {
	name := "test-" + broker.NewID()
	t.Cleanup(func() { os.Remove(serverlock.Path(name)) })
	try := func(how int) error {
		f, err := os.OpenFile(serverlock.Path(name), os.O_RDWR|os.O_CREATE, 0o666)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
	}
	t.Run("user", func(t *testing.T) {
		serverlock.Use(t, name)
		if err := try(syscall.LOCK_SH); err != nil {
			t.Errorf("a second user: %v", err)
		}
		if err := try(syscall.LOCK_EX); !errors.Is(err, syscall.EWOULDBLOCK) {
			t.Errorf("a restart while a user holds the lock: %v, want EWOULDBLOCK", err)
		}
	})
	if err := try(syscall.LOCK_EX); err != nil {
		t.Fatalf("a restart after the user ended: %v", err)
	}
	unlock := serverlock.Exclusive(t, name)
	if err := try(syscall.LOCK_SH); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Errorf("a user during a restart: %v, want EWOULDBLOCK", err)
	}
	unlock()
	if err := try(syscall.LOCK_SH); err != nil {
		t.Errorf("a user after the restart: %v", err)
	}
}
