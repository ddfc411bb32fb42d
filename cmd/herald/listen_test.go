package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// TestListenPortBusy: every command that listens exits with an error naming
// the address when its port is taken, instead of running without the
// listener or waiting (runCLI cancels a command that is still running after
// 30 s, which then returns without error and fails the test).
func TestListenPortBusy(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	free := "127.0.0.1:0"
	for _, c := range []struct {
		name string
		args []string
	}{
		{"serve broker --listen", []string{"serve", "broker", "--listen", addr}},
		{"serve user --listen", []string{"serve", "user", "--listen", addr, "--broker", "mem://", "--registry", "mem://"}},
		{"serve email --metrics-listen", []string{"serve", "email", "--metrics-listen", addr, "--broker", "mem://"}},
		{"up --nats-listen", []string{"up", "--nats-listen", addr, "--user-listen", free, "--smtp-listen", free, "--admin-listen", free}},
		{"up --user-listen", []string{"up", "--broker", "mem://", "--user-listen", addr, "--smtp-listen", free, "--admin-listen", free}},
		{"up --smtp-listen", []string{"up", "--broker", "mem://", "--user-listen", free, "--smtp-listen", addr, "--admin-listen", free}},
		{"up --broker http://?listen=", []string{"up", "--broker", "http://?listen=" + addr, "--user-listen", free, "--smtp-listen", free, "--admin-listen", free}},
		{"up --admin-listen", []string{"up", "--broker", "mem://", "--user-listen", free, "--smtp-listen", free, "--admin-listen", addr}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append(c.args, "--log-level", "error")
			switch c.args[0] + " " + c.args[1] {
			case "serve broker":
				args = append(args, "--data-dir", filepath.Join(dir, "nats"))
			case "serve user":
				args = append(args, "--database", "sqlite://"+filepath.Join(dir, "users.db"))
			case "serve email":
				args = append(args, "--database", "sqlite://"+filepath.Join(dir, "email.db"))
			default:
				args = append(args, "--data-dir", dir)
			}
			out, err := runCLI(t, args...)
			if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "address already in use") {
				t.Fatalf("herald %s with %s taken: %v, want an error naming the address in use\n%s", c.name, addr, err, out)
			}
		})
	}
}
