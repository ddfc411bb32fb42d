package sqs

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/herald-dev/herald/broker"
)

// Scheme is the URL scheme of this backend in a [broker.URLMux].
const Scheme = "sqs"

// OpenURL opens a broker from a URL (see # URLs in the package
// documentation). Its signature is [broker.OpenFunc]: register it with
// mux.Register(sqs.Scheme, sqs.OpenURL).
func OpenURL(ctx context.Context, u *url.URL) (broker.Broker, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("sqs: open %q: %w: "+format, append([]any{u.Redacted(), broker.ErrBadURL}, args...)...)
	}
	if u.Scheme != Scheme {
		return nil, bad("scheme is not %q", Scheme)
	}
	if err := broker.CheckQuery(u, "endpoint", "prefix", "wait", "max_message_bytes", "redrive"); err != nil {
		return nil, fmt.Errorf("sqs: open %q: %w", u.Redacted(), err)
	}
	if u.Host == "" || u.Port() != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return nil, bad("want sqs://region[?options], such as sqs://eu-west-1")
	}
	q := u.Query()
	var opts []Option
	if q.Has("prefix") {
		opts = append(opts, WithPrefix(q.Get("prefix")))
	}
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, bad("wait=%q is not a duration such as 20s", v)
		}
		opts = append(opts, WithWaitTime(d))
	}
	for name, apply := range map[string]func(int) Option{"max_message_bytes": WithMaxMessageBytes, "redrive": WithRedrive} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, bad("%s=%q is not an integer", name, v)
			}
			opts = append(opts, apply(n))
		}
	}
	loadOpts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(u.Host)}
	if ep := q.Get("endpoint"); ep != "" {
		e, err := url.Parse(ep)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return nil, bad("endpoint=%q is not an http(s) URL", ep)
		}
		opts = append(opts, WithEndpoint(ep))
		if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
			// An emulator takes any signature; do not go looking for
			// credentials (the instance metadata service can take seconds).
			loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("herald", "herald", "")))
		}
	}
	if err := ctx.Err(); err != nil { // parsed; set nothing up for a context already done
		return nil, fmt.Errorf("sqs: open %q: %w", u.Redacted(), err)
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("sqs: open %q: AWS configuration: %w", u.Redacted(), err)
	}
	b, err := New(ctx, cfg, opts...)
	if err != nil {
		return nil, fmt.Errorf("sqs: open %q: %w", u.Redacted(), err)
	}
	return b, nil
}
