package user

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
)

// checkContentType answers a POST whose content type no supported protocol
// uses with HTTP 415 and a Connect error that says so, instead of the bare
// 415 connect-go gives. GETs (Connect's GET for side-effect-free calls)
// carry no body and pass.
func checkContentType(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && !supportedContentType(r.Header.Get("Content-Type")) {
			writeError(w, http.StatusUnsupportedMediaType, connect.CodeInvalidArgument,
				fmt.Sprintf("content-type: %s is not supported; send application/json or application/proto (Connect), application/grpc or application/grpc-web",
					quote(r.Header.Get("Content-Type"))))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func supportedContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch {
	case mt == "application/json", mt == "application/proto":
		return true
	case mt == "application/grpc", strings.HasPrefix(mt, "application/grpc+"):
		return true
	case mt == "application/grpc-web", strings.HasPrefix(mt, "application/grpc-web+"):
		return true
	case strings.HasPrefix(mt, "application/connect+"):
		return true
	}
	return false
}

// writeError writes a Connect protocol error body.
func writeError(w http.ResponseWriter, status int, code connect.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"code": code.String(), "message": msg})
}

// logInterceptor logs each call's procedure, protocol, peer, code and
// duration at debug level (warn for server-side failures). It never logs
// the request or response messages, which hold passwords and hashes.
func logInterceptor(log *slog.Logger) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			start := time.Now()
			res, err := next(ctx, req)
			level, code := slog.LevelDebug, "ok"
			if err != nil {
				c := connect.CodeOf(err)
				code = c.String()
				switch c {
				case connect.CodeInternal, connect.CodeUnavailable, connect.CodeUnknown, connect.CodeDataLoss:
					level = slog.LevelWarn
				}
			}
			log.Log(ctx, level, "rpc", "procedure", req.Spec().Procedure, "protocol", req.Peer().Protocol,
				"peer", req.Peer().Addr, "code", code, "duration", time.Since(start))
			return res, err
		}
	}
}
