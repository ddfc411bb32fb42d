// Package serverlock keeps a test that restarts a shared test server (the
// RabbitMQ node scripts/servers/start-rabbitmq.sh runs) from doing it under
// the tests of another package using that server. `go test ./...` runs
// packages in parallel, each in a process of its own, so the lock is a file
// lock (flock) on a file named for the server in the temporary directory:
// the kernel releases it when its holder exits, however it exits.
package serverlock

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Use holds server's lock shared until t ends: other users run alongside,
// a restart waits for them.
func Use(t testing.TB, server string) {
	t.Helper()
	t.Cleanup(lock(t, server, syscall.LOCK_SH))
}

// Exclusive holds server's lock alone, waiting for its users to end, until
// the returned function is called.
func Exclusive(t testing.TB, server string) (unlock func()) {
	t.Helper()
	return lock(t, server, syscall.LOCK_EX)
}

// Path is the lock file of server.
func Path(server string) string {
	return filepath.Join(os.TempDir(), "herald-test-"+server+".lock")
}

func lock(t testing.TB, server string, how int) func() {
	t.Helper()
	path := Path(server)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatalf("serverlock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		t.Fatalf("serverlock: lock %s: %v", path, err)
	}
	return func() {
		if err := f.Close(); err != nil { // closing the file releases the lock
			t.Errorf("serverlock: %v", fmt.Errorf("unlock %s: %w", path, err))
		}
	}
}
