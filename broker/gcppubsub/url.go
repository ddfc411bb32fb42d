package gcppubsub

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/herald-dev/herald/broker"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Scheme is the URL scheme of this backend in a [broker.URLMux].
const Scheme = "gcppubsub"

// OpenURL opens a broker from a URL (see # URLs in the package
// documentation). Its signature is [broker.OpenFunc]: register it with
// mux.Register(gcppubsub.Scheme, gcppubsub.OpenURL).
func OpenURL(ctx context.Context, u *url.URL) (broker.Broker, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("gcppubsub: open %q: %w: "+format, append([]any{u.Redacted(), broker.ErrBadURL}, args...)...)
	}
	if u.Scheme != Scheme {
		return nil, bad("scheme is not %q", Scheme)
	}
	if err := broker.CheckQuery(u, "endpoint", "prefix", "server_backoff", "dead_letter_policy", "max_message_bytes", "streams"); err != nil {
		return nil, fmt.Errorf("gcppubsub: open %q: %w", u.Redacted(), err)
	}
	if u.Host == "" || u.Port() != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return nil, bad("want gcppubsub://project-id[?options]")
	}
	q := u.Query()
	var opts []Option
	if q.Has("prefix") {
		opts = append(opts, WithPrefix(q.Get("prefix")))
	}
	switch v := q.Get("server_backoff"); v {
	case "", "false":
	case "true":
		opts = append(opts, WithServerBackoff())
	default:
		return nil, bad("server_backoff=%q (want true or false)", v)
	}
	switch v := q.Get("dead_letter_policy"); v {
	case "", "true":
	case "false":
		opts = append(opts, WithoutDeadLetterPolicy())
	default:
		return nil, bad("dead_letter_policy=%q (want true or false)", v)
	}
	var conn *grpc.ClientConn
	if v := q.Get("streams"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, bad("streams=%q is not an integer", v)
		}
		opts = append(opts, WithReceiveStreams(n))
	}
	if v := q.Get("max_message_bytes"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, bad("max_message_bytes=%q is not an integer", v)
		}
		opts = append(opts, WithMaxMessageBytes(n))
	}
	if err := ctx.Err(); err != nil { // make no client for a context already done
		return nil, fmt.Errorf("gcppubsub: open %q: %w", u.Redacted(), err)
	}
	if ep := q.Get("endpoint"); ep != "" {
		var err error
		conn, err = grpc.NewClient(ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, bad("endpoint=%q: %v", ep, err)
		}
		opts = append(opts,
			WithClientOptions(option.WithGRPCConn(conn), option.WithoutAuthentication()),
			func(c *config) error {
				// The client may have closed it already; either way it is closed.
				c.onClose = append(c.onClose, func() error { _ = conn.Close(); return nil })
				return nil
			},
		)
	}
	b, err := New(ctx, u.Host, opts...)
	if err != nil {
		if conn != nil {
			_ = conn.Close()
		}
		return nil, fmt.Errorf("gcppubsub: open %q: %w", u.Redacted(), err)
	}
	return b, nil
}
