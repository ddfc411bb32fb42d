package mem

import (
	"context"
	"sync"

	"github.com/herald-dev/herald/registry"
)

// watcher queues the events of one Watch call without ever blocking the
// store: the store pushes under its lock, a goroutine hands the queue to the
// caller's channel at the caller's pace.
type watcher struct {
	mu     sync.Mutex
	queue  []registry.Event
	signal chan struct{} // capacity 1: "the queue is not empty"
}

func newWatcher() *watcher { return &watcher{signal: make(chan struct{}, 1)} }

func (w *watcher) push(ev registry.Event) {
	w.mu.Lock()
	w.queue = append(w.queue, ev)
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// run delivers the queued events to out until ctx or done ends it, then
// closes out.
func (w *watcher) run(ctx context.Context, done <-chan struct{}, out chan<- registry.Event) {
	defer close(out)
	for {
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		w.mu.Unlock()
		for _, ev := range batch {
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
		select {
		case <-w.signal:
		case <-ctx.Done():
			return
		case <-done:
			return
		}
	}
}
