package kafka

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Scheme is the URL scheme of this backend in a [broker.URLMux].
const Scheme = "kafka"

// OpenURL opens a broker from a URL (see # URLs in the package
// documentation). Its signature is [broker.OpenFunc]: register it with
// mux.Register(kafka.Scheme, kafka.OpenURL).
func OpenURL(ctx context.Context, u *url.URL) (broker.Broker, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("kafka: open %q: %w: "+format, append([]any{u.Redacted(), broker.ErrBadURL}, args...)...)
	}
	if u.Scheme != Scheme {
		return nil, bad("scheme is not %q", Scheme)
	}
	if err := broker.CheckQuery(u, "partitions", "replication", "max_message_bytes", "tls", "sasl", "heartbeat", "session_timeout"); err != nil {
		return nil, fmt.Errorf("kafka: open %q: %w", u.Redacted(), err)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return nil, bad("want kafka://host:port[,host:port…][?options]")
	}
	var seeds []string
	for h := range strings.SplitSeq(u.Host, ",") {
		if h == "" {
			return nil, bad("empty host in the broker list")
		}
		if _, _, err := net.SplitHostPort(h); err != nil { // no port: Kafka's
			h = net.JoinHostPort(strings.Trim(h, "[]"), "9092")
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" {
			return nil, bad("broker %q: want host:port", h)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, bad("broker %q: port %q is not a number from 1 to 65535", h, port)
		}
		seeds = append(seeds, h)
	}
	q := u.Query()
	var opts []Option
	intOpt := func(name string, apply func(int) Option) error {
		v := q.Get(name)
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return bad("%s=%q is not an integer", name, v)
		}
		opts = append(opts, apply(n))
		return nil
	}
	if err := intOpt("partitions", WithPartitions); err != nil {
		return nil, err
	}
	if err := intOpt("replication", WithReplicationFactor); err != nil {
		return nil, err
	}
	if err := intOpt("max_message_bytes", WithMaxMessageBytes); err != nil {
		return nil, err
	}
	hb, st := DefaultHeartbeatInterval, DefaultSessionTimeout
	for name, d := range map[string]*time.Duration{"heartbeat": &hb, "session_timeout": &st} {
		if v := q.Get(name); v != "" {
			p, err := time.ParseDuration(v)
			if err != nil {
				return nil, bad("%s=%q is not a duration such as 500ms", name, v)
			}
			*d = p
		}
	}
	if q.Has("heartbeat") || q.Has("session_timeout") {
		opts = append(opts, WithGroupTiming(hb, st))
	}
	var kopts []kgo.Opt
	switch v := q.Get("tls"); v {
	case "", "false":
	case "true":
		kopts = append(kopts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	default:
		return nil, bad("tls=%q (want true or false)", v)
	}
	mech := q.Get("sasl")
	if u.User != nil {
		user := u.User.Username()
		pass, _ := u.User.Password()
		switch strings.ToLower(mech) {
		case "", "plain":
			kopts = append(kopts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
		case "scram-sha-256":
			kopts = append(kopts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
		case "scram-sha-512":
			kopts = append(kopts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
		default:
			return nil, bad("sasl=%q (want plain, scram-sha-256 or scram-sha-512)", mech)
		}
	} else if mech != "" {
		return nil, bad("sasl=%q needs user:password@ in the URL", mech)
	}
	if len(kopts) > 0 {
		opts = append(opts, WithKgoOptions(kopts...))
	}
	b, err := New(ctx, seeds, opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: open %q: %w", u.Redacted(), err)
	}
	return b, nil
}
