package natsserver_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/broker/nats/natsserver/natsservertest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRestartKeepsPortAndData(t *testing.T) {
	srv, err := natsserver.Start(natsserver.WithDataDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	url, port := srv.ClientURL(), srv.Port()
	if port <= 0 {
		t.Fatalf("port %d", port)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js := natsservertest.JetStream(t, url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s", []byte("kept")); err != nil {
		t.Fatal(err)
	}

	if err := srv.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if srv.ClientURL() != url || srv.Port() != port {
		t.Errorf("after restart %s (port %d), want %s (port %d)", srv.ClientURL(), srv.Port(), url, port)
	}
	// The client reconnects by itself; the message is still there.
	msg, err := getWhenBack(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != "kept" {
		t.Errorf("message after restart %q, want kept", msg.Data)
	}
}

// getWhenBack reads message 1 of stream S, retrying while the client
// reconnects.
func getWhenBack(ctx context.Context, js jetstream.JetStream) (*jetstream.RawStreamMsg, error) {
	for {
		s, err := js.Stream(ctx, "S")
		if err == nil {
			return s.GetMsg(ctx, 1)
		}
		select {
		case <-ctx.Done():
			return nil, errors.Join(ctx.Err(), err)
		case <-time.After(20 * time.Millisecond): // polling a reconnecting client
		}
	}
}

func TestTemporaryDataDirRemoved(t *testing.T) {
	srv, err := natsserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	dir := srv.DataDir()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("data directory: %v", err)
	}
	srv.Shutdown()
	srv.Shutdown() // idempotent
	srv.WaitForShutdown()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary data directory %s still there after Shutdown (%v)", dir, err)
	}
	if err := srv.Restart(); !errors.Is(err, natsserver.ErrStart) {
		t.Errorf("Restart after Shutdown: %v, want ErrStart", err)
	}
}

func TestMaxPayload(t *testing.T) {
	srv, err := natsserver.Start(natsserver.WithDataDir(t.TempDir()), natsserver.WithMaxPayload(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if got := nc.MaxPayload(); got != 4<<20 {
		t.Errorf("max payload %d, want %d", got, 4<<20)
	}
}

func TestPortInUse(t *testing.T) {
	a, err := natsserver.Start(natsserver.WithDataDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown()
	// The default ready timeout is long: a busy port must fail at once,
	// not after it, so that a program started twice exits and says why.
	start := time.Now()
	_, err = natsserver.Start(natsserver.WithDataDir(t.TempDir()), natsserver.WithPort(a.Port()), natsserver.WithReadyTimeout(time.Minute))
	if !errors.Is(err, natsserver.ErrStart) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("second server on port %d: %v, want ErrStart saying the address is in use", a.Port(), err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the second server took %v to fail, want at once rather than the ready timeout (1m)", d)
	}
}

func TestInvalidOptions(t *testing.T) {
	for name, opt := range map[string]natsserver.Option{
		"port 0":        natsserver.WithPort(0),
		"port too big":  natsserver.WithPort(70000),
		"empty host":    natsserver.WithHost(""),
		"empty dir":     natsserver.WithDataDir(""),
		"payload tiny":  natsserver.WithMaxPayload(10),
		"payload huge":  natsserver.WithMaxPayload(128 << 20),
		"no ready time": natsserver.WithReadyTimeout(0),
		"nil logger":    natsserver.WithLogger(nil),
		"empty name":    natsserver.WithServerName(""),
	} {
		if _, err := natsserver.Start(opt); !errors.Is(err, natsserver.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
}
