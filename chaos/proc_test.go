package chaos_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-dev/herald/internal/syncbuf"
)

// heraldBin is the herald binary TestMain builds once for every scenario.
var heraldBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "herald-chaos-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		heraldBin = filepath.Join(dir, "herald")
		// The module root is this package's parent directory.
		build := exec.Command("go", "build", "-o", heraldBin, "./cmd/herald")
		build.Dir = ".."
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: go build ./cmd/herald:", err)
			return 1
		}
		return m.Run()
	}())
}

// proc is one herald process.
type proc struct {
	t    *testing.T
	name string
	args []string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
}

// startProc starts herald with args and waits until its output matches
// ready; it returns the first submatch of ready, if any.
func startProc(t *testing.T, name string, ready *regexp.Regexp, args ...string) (*proc, string) {
	t.Helper()
	p := &proc{t: t, name: name, args: args}
	got := p.start(ready)
	t.Cleanup(func() { p.stop() })
	return p, got
}

func (p *proc) start(ready *regexp.Regexp) string {
	p.t.Helper()
	p.out = &syncbuf.Buffer{}
	p.cmd = exec.Command(heraldBin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	p.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(p.cmd, p.done)
	deadline := time.After(60 * time.Second)
	for {
		if m := ready.FindStringSubmatch(p.out.String()); m != nil {
			if len(m) > 1 {
				return m[1]
			}
			return m[0]
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s ended before it was ready:\n%s", p.name, p.out.String())
		case <-deadline:
			p.t.Fatalf("%s not ready after 60s:\n%s", p.name, p.out.String())
		case <-time.After(20 * time.Millisecond): // polling a process's output
		}
	}
}

// kill SIGKILLs the process and waits for it to be gone.
func (p *proc) kill() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop ends the process gracefully (SIGTERM), or kills it after 20 s.
func (p *proc) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// lastLines is the end of a process's output, for failure messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
