package syncbuf_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/herald-dev/herald/internal/syncbuf"
)

// TestConcurrentWrites: every write lands whole, read while writing (the
// race detector checks the locking).
func TestConcurrentWrites(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				b.Write([]byte("x\n"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "x\n"); n != 800 {
		t.Fatalf("%d writes, want 800", n)
	}
	b.Logger().Info("hello", "k", "v")
	if !strings.Contains(b.String(), "msg=hello k=v") {
		t.Fatalf("logger output missing:\n%s", b.String())
	}
}
