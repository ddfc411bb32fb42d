package system

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/herald-dev/herald/metrics"
)

// adminHandler is what the admin listener serves: /metrics, and the
// console at the root.
func (s *System) adminHandler(console http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(s.Metrics))
	mux.Handle("/", console)
	return mux
}

// serveAdmin serves h on addr until the returned stop is called.
func serveAdmin(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (stop func(context.Context) error, bound string, err error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin: serve", "err", err)
		}
	}()
	stop = func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		if err != nil {
			srv.Close()
		}
		<-done
		return err
	}
	return stop, ln.Addr().String(), nil
}
