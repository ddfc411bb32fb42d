package httpbroker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/registry"
)

// URL schemes of the HTTP broker: "http" serves the subscriber endpoint
// over plain HTTP, "https" over TLS (cert= and key= required).
const (
	Scheme      = "http"
	SchemeHTTPS = "https"
)

// EnvSecret is the environment variable the shared secret is read from
// when the URL has neither secret= nor secret_file=.
const EnvSecret = "HERALD_BROKER_SECRET"

// DefaultRegistryURL is the registry a URL without registry= uses.
const DefaultRegistryURL = "mem://"

// RegistryOpener opens a registry by URL; the program supplies it (it knows
// which registries it links and how "mem://" is shared in the process).
type RegistryOpener func(ctx context.Context, rawURL string) (registry.Registry, error)

// OpenURLWith returns the [broker.OpenFunc] of the "http" and "https"
// schemes: it opens the registry named by registry= through openRegistry
// (the broker closes it on Close) and makes a broker with defaults, then
// the URL's settings, applied:
//
//	mux.Register(httpbroker.Scheme, httpbroker.OpenURLWith(openRegistry, httpbroker.WithSpool(dir)))
//	mux.Register(httpbroker.SchemeHTTPS, httpbroker.OpenURLWith(openRegistry, httpbroker.WithSpool(dir)))
//
// See the package documentation for the URL's query parameters.
func OpenURLWith(openRegistry RegistryOpener, defaults ...Option) broker.OpenFunc {
	return func(ctx context.Context, u *url.URL) (broker.Broker, error) {
		if openRegistry == nil {
			return nil, fmt.Errorf("http: open: %w: no registry opener", broker.ErrBadURL)
		}
		opts, regURL, err := urlOptions(u)
		if err != nil {
			return nil, err
		}
		reg, err := openRegistry(ctx, regURL)
		if err != nil {
			return nil, fmt.Errorf("http: open %s: registry: %w", Redact(u), err)
		}
		all := append(append(append([]Option(nil), defaults...), opts...), WithCloseRegistry())
		b, err := New(reg, all...)
		if err != nil {
			_ = reg.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("http: open %s: %w", Redact(u), err)
		}
		return b, nil
	}
}

// Query parameters of the broker's URL.
var urlKeys = []string{"registry", "spool", "secret", "secret_file", "listen", "advertise", "ttl", "cert", "key", "ca", "max_message", "replay_window"}

// urlOptions turns u into options and the registry URL.
func urlOptions(u *url.URL) ([]Option, string, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("http: open %s: %w: %s", Redact(u), broker.ErrBadURL, fmt.Sprintf(format, args...))
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != Scheme && scheme != SchemeHTTPS {
		return nil, "", bad("scheme is not %s or %s", Scheme, SchemeHTTPS)
	}
	if u.Host != "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.Opaque != "" || u.Fragment != "" {
		return nil, "", bad("the URL takes no host, path or user: use listen= for the endpoint's address")
	}
	if err := broker.CheckQuery(u, urlKeys...); err != nil {
		return nil, "", fmt.Errorf("http: open %s: %w", Redact(u), err)
	}
	q := u.Query()
	var opts []Option
	regURL := q.Get("registry")
	if regURL == "" {
		regURL = DefaultRegistryURL
	}
	if v := q.Get("spool"); v != "" {
		opts = append(opts, WithSpool(v))
	}
	switch {
	case q.Has("secret"):
		opts = append(opts, WithSecret([]byte(q.Get("secret"))))
	case q.Has("secret_file"):
		data, err := os.ReadFile(q.Get("secret_file"))
		if err != nil {
			return nil, "", bad("secret_file: %v", err)
		}
		opts = append(opts, WithSecret([]byte(strings.TrimSpace(string(data)))))
	case os.Getenv(EnvSecret) != "":
		opts = append(opts, WithSecret([]byte(os.Getenv(EnvSecret))))
	}
	if v := q.Get("listen"); v != "" {
		opts = append(opts, WithListen(v))
	}
	if v := q.Get("advertise"); v != "" {
		opts = append(opts, WithAdvertise(v))
	}
	for _, k := range []string{"ttl", "replay_window"} {
		if v := q.Get(k); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, "", bad("%s=%q is not a duration", k, v)
			}
			if k == "ttl" {
				opts = append(opts, WithRegisterTTL(d))
			} else {
				opts = append(opts, WithReplayWindow(d))
			}
		}
	}
	if v := q.Get("max_message"); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err != nil {
			return nil, "", bad("max_message=%q is not a number of bytes", v)
		}
		opts = append(opts, WithMaxMessageSize(n))
	}
	cert, key, ca := q.Get("cert"), q.Get("key"), q.Get("ca")
	if scheme == SchemeHTTPS {
		if cert == "" || key == "" {
			return nil, "", bad("https needs cert= and key= (PEM files)")
		}
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, "", bad("cert/key: %v", err)
		}
		opts = append(opts, WithTLS(&tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}))
	} else if cert != "" || key != "" {
		return nil, "", bad("cert= and key= need the https scheme")
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, "", bad("ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", bad("ca: no certificate in %s", ca)
		}
		opts = append(opts, WithClientTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	return opts, regURL, nil
}

// Redact returns u as text with its secret= parameter and any password
// replaced, for logs and errors.
func Redact(u *url.URL) string {
	c := *u
	q := c.Query()
	if q.Has("secret") {
		q.Set("secret", "xxxxx")
		c.RawQuery = q.Encode()
	}
	if r := q.Get("registry"); r != "" {
		if ru, err := url.Parse(r); err == nil && ru.User != nil {
			q.Set("registry", ru.Redacted())
			c.RawQuery = q.Encode()
		}
	}
	return c.Redacted()
}
