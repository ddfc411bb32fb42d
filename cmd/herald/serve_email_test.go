package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/broker/nats/natsserver/natsservertest"
	"github.com/herald-dev/herald/internal/syncbuf"
)

// serveEmail runs `herald serve email args…` until it prints "records",
// and returns its output and a stop that cancels it (as SIGTERM does) and
// returns its error. If the command ends first, its error is returned and
// stop is nil.
func serveEmail(t *testing.T, args ...string) (out string, stop func() error, err error) {
	t.Helper()
	cmd := newRootCmd()
	var buf syncbuf.Buffer
	cmd.SetOut(&buf)
	cmd.SetErr(&buf)
	cmd.SetArgs(append([]string{"serve", "email", "--log-level", "warn"}, args...))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.After(20 * time.Second)
	for !strings.Contains(buf.String(), "  records  ") {
		select {
		case err := <-done:
			return buf.String(), nil, err
		case <-deadline:
			t.Fatalf("serve email printed no records line:\n%s", buf.String())
		case <-time.After(20 * time.Millisecond): // polling interval
		}
	}
	return buf.String(), func() error { cancel(); return <-done }, nil
}

// TestServeEmailRecordsOnTheBroker: by default the records are a KV bucket
// on the NATS server the events come from.
func TestServeEmailRecordsOnTheBroker(t *testing.T) {
	srv, err := natsserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	out, stop, err := serveEmail(t, "--broker", srv.ClientURL(), "--smtp", "smtp://127.0.0.1:2525")
	if err != nil {
		t.Fatalf("serve email: %v\n%s", err, out)
	}
	if !strings.Contains(out, "records  NATS KV bucket herald_dedupe_email (shared by every replica)") {
		t.Errorf("output does not say where the records are:\n%s", out)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve email: %v", err)
	}
	js := natsservertest.JetStream(t, srv.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "herald_dedupe_email")
	if err != nil {
		t.Fatalf("the records' bucket: %v", err)
	}
	st, err := kv.Status(ctx)
	if err != nil || st.TTL() != 30*24*time.Hour {
		t.Fatalf("bucket status %v, %v: want a 720h retention", st, err)
	}
}

// TestServeEmailRefusesUnsharedRecords: on an engine with no place for the
// records, the service does not start with records of its own.
func TestServeEmailRefusesUnsharedRecords(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	out, _, err := serveEmail(t, "--broker", "kafka://"+c.ListenAddrs()[0])
	if err == nil || !strings.Contains(err.Error(), "--dedupe broker: the kafka:// broker has no place for the sent-mail records") ||
		!strings.Contains(err.Error(), "--dedupe postgres://") {
		t.Fatalf("serve email on kafka with the default records: %v\n%s", err, out)
	}
}

func TestServeEmailDedupeFlags(t *testing.T) {
	dir := t.TempDir()
	a, b := "sqlite://"+filepath.Join(dir, "a.db"), "sqlite://"+filepath.Join(dir, "b.db")
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"two spellings":          {[]string{"--dedupe", a, "--database", b}, "give one"},
		"retention of a file":    {[]string{"--dedupe", a, "--dedupe-retention", "1h"}, "--dedupe-retention applies to --dedupe broker"},
		"negative retention":     {[]string{"--dedupe-retention", "-1h"}, "want 0 (for good) or a duration"},
		"not a store":            {[]string{"--dedupe", "redis"}, `want "broker" or a database URL`},
		"unknown database":       {[]string{"--dedupe", "oracle://db/x"}, "--dedupe oracle://db/x"},
		"short broker retention": {[]string{"--dedupe-retention", "1s"}, "retention 1s"},
	} {
		t.Run(name, func(t *testing.T) {
			out, _, err := serveEmail(t, append([]string{"--broker", "mem://"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one saying %q\n%s", err, tc.want, out)
			}
		})
	}

	// --database alone, from the environment as existing set-ups give it,
	// still keeps the records in that database.
	t.Setenv("HERALD_DATABASE", a)
	out, stop, err := serveEmail(t, "--broker", "mem://")
	if err != nil {
		t.Fatalf("serve email: %v\n%s", err, out)
	}
	if !strings.Contains(out, "records  "+a+" (this replica's own)") {
		t.Errorf("output does not name %s as the records:\n%s", a, out)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
