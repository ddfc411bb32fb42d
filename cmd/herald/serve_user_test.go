package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/internal/syncbuf"
)

// serveUser runs `herald serve user` on mem:// with args after the common
// ones until it prints its start summary, stops it, and returns its output.
func serveUser(t *testing.T, args ...string) string {
	t.Helper()
	cmd := newRootCmd()
	var out syncbuf.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{"serve", "user", "--broker", "mem://", "--registry", "", "--listen", "127.0.0.1:0",
		"--database", "sqlite://" + filepath.Join(t.TempDir(), "users.db"), "--bcrypt-cost", "4", "--log-level", "warn"}, args...))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.After(20 * time.Second)
	for !strings.Contains(out.String(), "declared ") {
		select {
		case err := <-done:
			t.Fatalf("serve user ended early: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("no start summary printed:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel() // what main does on SIGINT or SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve user: %v\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve user did not stop")
	}
	return out.String()
}

// --declare-group declares the email service's group by default, the
// groups it names (repeated or comma-separated, also from
// HERALD_DECLARE_GROUP), or none when empty; a bad value stops the command
// before it opens anything.
func TestServeUserDeclareGroup(t *testing.T) {
	if out := serveUser(t); !strings.Contains(out, "declared user.registered:email\n") {
		t.Errorf("default: the summary does not show the email group declared:\n%s", out)
	}
	out := serveUser(t, "--declare-group", "user.registered:email,orders.placed:audit", "--declare-group", "user.registered:crm")
	if !strings.Contains(out, "declared user.registered:email, orders.placed:audit, user.registered:crm\n") {
		t.Errorf("three groups: summary:\n%s", out)
	}
	if out := serveUser(t, "--declare-group", ""); !strings.Contains(out, "declared (none)\n") {
		t.Errorf("--declare-group '': summary:\n%s", out)
	}
	t.Setenv("HERALD_DECLARE_GROUP", "")
	if out := serveUser(t); !strings.Contains(out, "declared (none)\n") {
		t.Errorf("HERALD_DECLARE_GROUP='': summary:\n%s", out)
	}

	for _, bad := range []string{"user.registered", "user.registered:a.b", ":email"} {
		cmd := newRootCmd()
		var out syncbuf.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{"serve", "user", "--broker", "mem://", "--registry", "", "--declare-group", bad})
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), "--declare-group") ||
			!(errors.Is(err, broker.ErrInvalidOption) || errors.Is(err, broker.ErrBadTopic)) {
			t.Errorf("--declare-group %q: %v, want an error naming the flag", bad, err)
		}
	}
}
