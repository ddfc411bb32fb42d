package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/internal/syncbuf"
	"github.com/herald-dev/herald/internal/system"
	"github.com/herald-dev/herald/services/email/smtpsink"
)

// runCLIWithStdin runs herald with args in process, stdin reading from in,
// and returns what it printed.
func runCLIWithStdin(t *testing.T, in string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out syncbuf.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(in))
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// TestUsersRegisterPasswordStdin runs the README's registration: the
// password piped in with --password-stdin, the service found by name in
// the registry, the user read back by email. The password appears in no
// output; an empty stdin is refused before anything is called, and creates
// no user.
func TestUsersRegisterPasswordStdin(t *testing.T) {
	sink, err := smtpsink.Start("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close(context.Background()) })
	s := startSystem(t, system.Config{SMTPURL: sink.URL()})
	const password = "piped-in horse battery"

	out, err := runCLIWithStdin(t, password+"\r\n", "users", "register", "--registry", s.RegistryURL,
		"--name", "Grace Hopper", "--email", "grace@example.com", "--password-stdin", "--json")
	if err != nil {
		t.Fatalf("register: %v\n%s", err, out)
	}
	var created struct{ ID, Name, Email string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.ID == "" || created.Email != "grace@example.com" {
		t.Fatalf("register --json printed %q (%v)", out, err)
	}

	got, err := runCLIWithStdin(t, "", "users", "get", "--registry", s.RegistryURL, "--email", "GRACE@example.com", "--json")
	if err != nil {
		t.Fatalf("get: %v\n%s", err, got)
	}
	var read struct{ ID, Name string }
	if err := json.Unmarshal([]byte(got), &read); err != nil || read.ID != created.ID || read.Name != "Grace Hopper" {
		t.Fatalf("get --json printed %q (%v), want the user created as %s", got, err, created.ID)
	}
	for _, o := range []string{out, got} {
		if strings.Contains(o, password) || strings.Contains(o, "$2a$") {
			t.Fatalf("output holds the password or its hash: %q", o)
		}
	}

	out, err = runCLIWithStdin(t, "", "users", "register", "--registry", s.RegistryURL,
		"--name", "Nobody", "--email", "nobody@example.com", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "stdin held no password") {
		t.Fatalf("register with an empty stdin: %v\n%s", err, out)
	}
	if out, err := runCLIWithStdin(t, "", "users", "get", "--registry", s.RegistryURL, "--email", "nobody@example.com"); err == nil {
		t.Fatalf("a user was created from an empty stdin:\n%s", out)
	}
}
