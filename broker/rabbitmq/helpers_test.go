package rabbitmq_test

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
	"github.com/herald-dev/herald/broker/rabbitmq"
	"github.com/herald-dev/herald/internal/serverlock"
)

// envURL is the variable that names the RabbitMQ server the tests use.
const envURL = "HERALD_TEST_AMQP_URL"

// serverURL returns the test server's URL, or skips the test.
func serverURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(envURL)
	if u == "" {
		t.Skipf("%s is not set: these tests need a RabbitMQ server (scripts/servers/start-rabbitmq.sh starts one; then %s=amqp://guest:guest@127.0.0.1:5672/)", envURL, envURL)
	}
	return u
}

// exchange returns an exchange name no other test uses, so that tests on a
// shared server never see each other's messages.
func exchange() string { return "t" + broker.NewID()[24:] }

// testExpiry makes the server delete the tests' queues once unused.
const testExpiry = 2 * time.Minute

// open opens a broker on the test server with opts, closed when the test ends.
func open(t testing.TB, opts ...rabbitmq.Option) *rabbitmq.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := rabbitmq.New(ctx, serverURL(t), append([]rabbitmq.Option{rabbitmq.WithQueueExpiry(testExpiry)}, opts...)...)
	if err != nil {
		t.Fatalf("rabbitmq.New: %v", err)
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
func restarter() (func(t *testing.T), string) {
	u, err := url.Parse(os.Getenv(envURL))
	if err != nil {
		return nil, "cannot parse " + envURL
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, envURL + " is not on this machine: the test cannot restart it"
	}
	if os.Geteuid() != 0 {
		return nil, "restarting RabbitMQ needs root (rabbitmqctl through its /usr/sbin wrapper)"
	}
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		return nil, "rabbitmqctl is not installed: the test cannot restart RabbitMQ"
	}
	const pidfile = "/var/lib/rabbitmq/mnesia/rabbit@localhost.pid"
	if _, err := os.Stat(pidfile); err != nil {
		return nil, "the RabbitMQ node was not started by scripts/servers/start-rabbitmq.sh (no " + pidfile + ")"
	}
	script, err := filepath.Abs("../../scripts/servers/restart-rabbitmq.sh")
	if err != nil {
		return nil, err.Error()
	}
	return func(t *testing.T) {
		t.Helper()
		// Not under another package's test using the node.
		defer serverlock.Exclusive(t, "rabbitmq")()
		out, err := exec.Command("bash", script).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
			t.Skipf("cannot restart RabbitMQ: %s", strings.TrimSpace(string(out)))
		}
		if err != nil {
			t.Fatalf("restart-rabbitmq.sh: %v\n%s", err, out)
		}
	}, ""
}
