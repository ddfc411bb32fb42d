package natsserver

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// logger adapts nats-server's logging interface to slog. It also remembers
// the last fatal message, which nats-server reports instead of returning an
// error, so that Start can say why the server did not come up.
type logger struct {
	l *slog.Logger // nil: log nothing

	mu     sync.Mutex
	fatal  string
	failed chan struct{} // closed by the first Fatalf
	once   sync.Once
}

func newLogger(l *slog.Logger) *logger { return &logger{l: l, failed: make(chan struct{})} }

func (g *logger) log(level slog.Level, format string, v []any) {
	if g.l == nil || !g.l.Enabled(context.Background(), level) {
		return
	}
	g.l.Log(context.Background(), level, fmt.Sprintf(format, v...), "component", "nats-server")
}

func (g *logger) Noticef(format string, v ...any) { g.log(slog.LevelDebug, format, v) }
func (g *logger) Warnf(format string, v ...any)   { g.log(slog.LevelWarn, format, v) }
func (g *logger) Errorf(format string, v ...any)  { g.log(slog.LevelError, format, v) }
func (g *logger) Debugf(format string, v ...any)  { g.log(slog.LevelDebug, format, v) }
func (g *logger) Tracef(format string, v ...any)  { g.log(slog.LevelDebug-4, format, v) }

// Fatalf logs at Error and remembers the message; unlike nats-server's own
// logger it never exits the process.
func (g *logger) Fatalf(format string, v ...any) {
	g.mu.Lock()
	g.fatal = fmt.Sprintf(format, v...)
	g.mu.Unlock()
	g.once.Do(func() { close(g.failed) })
	g.log(slog.LevelError, format, v)
}

func (g *logger) fatalSuffix() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fatal == "" {
		return ""
	}
	return ": " + g.fatal
}
