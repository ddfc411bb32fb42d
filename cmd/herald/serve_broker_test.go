package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/herald-dev/herald/internal/syncbuf"
)

func TestServeBroker(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HERALD_DATA_DIR", dir) // from the environment, as documented
	cmd := newRootCmd()
	var out syncbuf.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"serve", "broker", "--listen", "127.0.0.1:0", "--log-level", "warn"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	urlRE := regexp.MustCompile(`listening on (nats://127\.0\.0\.1:\d+)`)
	var url string
	deadline := time.Now().Add(20 * time.Second)
	for url == "" {
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve broker ended early: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no client URL printed:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), dir) {
		t.Errorf("output does not name the data directory %s from HERALD_DATA_DIR:\n%s", dir, out.String())
	}
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	defer nc.Close()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	cancel() // what main does on SIGINT or SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve broker: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve broker did not stop")
	}
	if !strings.Contains(out.String(), "broker stopped") {
		t.Errorf("no shutdown message:\n%s", out.String())
	}
}

func TestServeBrokerHelp(t *testing.T) {
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"serve", "broker", "--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--listen", "--data-dir", "HERALD_DATA_DIR", "127.0.0.1:4222", "./.herald/nats"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestServeBrokerClusterHelp(t *testing.T) {
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"serve", "broker", "--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--cluster-listen", "--cluster-name", "--routes", "--server-name n3", "HERALD_ROUTES",
		"nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6223,nats-route://127.0.0.1:6224",
		"nats://127.0.0.1:4222,127.0.0.1:4223,127.0.0.1:4224?replicas=3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

// TestServeBrokerClusterFlags: cluster flags that cannot make a cluster
// node are refused before anything starts, saying which flag is missing.
func TestServeBrokerClusterFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--routes", "nats-route://127.0.0.1:6222"}, "--routes needs --cluster-listen"},
		{[]string{"--cluster-name", "c"}, "--cluster-name needs --cluster-listen"},
		{[]string{"--cluster-listen", "127.0.0.1:0", "--server-name", "n1"}, "--cluster-listen needs --routes"},
		{[]string{"--cluster-listen", "127.0.0.1:0", "--routes", "nats-route://127.0.0.1:6222"}, "--cluster-listen needs --server-name"},
		{[]string{"--cluster-listen", "127.0.0.1", "--server-name", "n1", "--routes", "nats-route://127.0.0.1:6222"}, "--cluster-listen \"127.0.0.1\""},
		{[]string{"--cluster-listen", "127.0.0.1:0", "--server-name", "n1", "--routes", "http://127.0.0.1:6222"}, "want nats-route://host:port"},
	} {
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append([]string{"serve", "broker", "--listen", "127.0.0.1:0", "--data-dir", dir, "--log-level", "error"}, tc.args...))
		err := cmd.ExecuteContext(ctxTimeout(t, 20*time.Second))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve broker %q: %v, want an error with %q", tc.args, err, tc.want)
		}
		if strings.Contains(out.String(), "listening on") {
			t.Errorf("serve broker %q started a server:\n%s", tc.args, out.String())
		}
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
