package redis_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/redis"
	"github.com/herald-dev/herald/internal/serverlock"
)

// envURL is the variable that names the Redis server the tests use.
const envURL = "HERALD_TEST_REDIS_URL"

// serverURL returns the test server's URL, or skips the test.
func serverURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(envURL)
	if u == "" {
		t.Skipf("%s is not set: these tests need a Redis server (scripts/servers/start-redis.sh starts one; then %s=redis://127.0.0.1:6379/0)", envURL, envURL)
	}
	return u
}

// prefix returns a key prefix no other test uses, so that tests on a shared
// server never see each other's streams.
func prefix() string { return "t" + broker.NewID()[24:] }

// open opens a broker on the test server with opts, closed when the test ends.
func open(t testing.TB, opts ...redis.Option) *redis.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := redis.New(ctx, serverURL(t), opts...)
	if err != nil {
		t.Fatalf("redis.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}

// restarter returns a function that restarts the test server with the
// project's script, or a reason why it cannot.
func restarter(t testing.TB) (func(t *testing.T), string) {
	raw := os.Getenv(envURL)
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "cannot parse " + envURL
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Hostname(), "6379"
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, envURL + " is not on this machine: the test cannot restart it"
	}
	script, err := filepath.Abs("../../scripts/servers/restart-redis.sh")
	if err != nil {
		return nil, err.Error()
	}
	state := os.Getenv("STATE_DIR")
	if state == "" {
		state = "/tmp/herald-servers"
	}
	if _, err := os.Stat(filepath.Join(state, "redis-"+port, "redis.pid")); err != nil {
		return nil, "the Redis server on port " + port + " was not started by scripts/servers/start-redis.sh (no " +
			filepath.Join(state, "redis-"+port, "redis.pid") + "), so the test cannot restart it"
	}
	return func(t *testing.T) {
		t.Helper()
		// Not under another package's test using the server.
		defer serverlock.Exclusive(t, "redis")()
		cmd := exec.Command("bash", script)
		cmd.Env = append(os.Environ(), "REDIS_PORT="+port)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
			t.Skipf("cannot restart Redis: %s", strings.TrimSpace(string(out)))
		}
		if err != nil {
			t.Fatalf("restart-redis.sh: %v\n%s", err, out)
		}
	}, ""
}

// withPrefix is an option with a fresh prefix.
func withPrefix() redis.Option { return redis.WithPrefix(prefix()) }
