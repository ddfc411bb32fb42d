package gomicro_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	herald "github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/gomicro"
	mb "go-micro.dev/v5/broker"
)

func testMux() *herald.URLMux {
	var mux herald.URLMux
	mux.Register(mem.Scheme, mem.OpenURL)
	mux.Register(nats.Scheme, nats.OpenURL)
	return &mux
}

// TestNewURL opens the Herald broker on Connect, closes it on Disconnect,
// and opens a new one on the next Connect.
func TestNewURL(t *testing.T) {
	for _, rawURL := range []string{"mem://", "nats://?storage=memory"} {
		t.Run(rawURL, func(t *testing.T) {
			b := gomicro.NewURL(testMux(), rawURL, gomicro.WithConnectTimeout(20*time.Second))
			if b.Address() != rawURL {
				t.Errorf("Address() = %q, want %q", b.Address(), rawURL)
			}
			var hb herald.Broker
			if b.As(&hb) {
				t.Fatalf("a Herald broker is open before Connect")
			}
			for round := range 2 {
				if err := b.Connect(); err != nil {
					t.Fatalf("Connect (round %d): %v", round, err)
				}
				if !b.As(&hb) {
					t.Fatalf("no Herald broker after Connect")
				}
				topic := topicFor(t)
				var r recorder
				subscribe(t, b, topic, r.handler(), mb.Queue("q"))
				publish(t, b, topic, "hello", map[string]string{"Micro-Topic": topic})
				waitFor(t, 10*time.Second, "the message", func() bool { return r.len() == 1 })
				if err := b.Disconnect(); err != nil {
					t.Fatalf("Disconnect: %v", err)
				}
				if err := hb.Publish(t.Context(), topic, &herald.Message{}); !errors.Is(err, herald.ErrClosed) {
					t.Errorf("the Herald broker opened by URL is still open after Disconnect: %v", err)
				}
				if err := b.Publish(topic, &mb.Message{}); !errors.Is(err, gomicro.ErrNotConnected) {
					t.Errorf("Publish after Disconnect = %v, want ErrNotConnected", err)
				}
			}
		})
	}
}

func TestNewURLErrors(t *testing.T) {
	b := gomicro.NewURL(testMux(), "kafka://broker:9092")
	if err := b.Connect(); !errors.Is(err, herald.ErrUnknownScheme) {
		t.Errorf("Connect with an unknown scheme = %v, want ErrUnknownScheme", err)
	}
	b = gomicro.NewURL(testMux(), "mem://?typo=1")
	if err := b.Connect(); !errors.Is(err, herald.ErrBadURL) {
		t.Errorf("Connect with an unknown query parameter = %v, want ErrBadURL", err)
	}
	// go-micro's Addrs option replaces the URL, and Address hides the password.
	if err := b.Init(mb.Addrs("nats://user:s3cret@127.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	if a := b.Address(); strings.Contains(a, "s3cret") || !strings.Contains(a, "127.0.0.1:1") {
		t.Errorf("Address() = %q, want the new URL without its password", a)
	}
	b = gomicro.NewURL(testMux(), "nats://user:s3cret@127.0.0.1:1", gomicro.WithConnectTimeout(500*time.Millisecond))
	err := b.Connect()
	if err == nil {
		t.Fatalf("Connect to a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Connect error shows the password: %v", err)
	}
	if b.Options().Addrs[0] != "nats://user:s3cret@127.0.0.1:1" {
		t.Errorf("Options().Addrs = %v", b.Options().Addrs)
	}
}
