package gomicro_test

import (
	"context"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/gomicro"
	mb "go-micro.dev/v5/broker"
)

// TestStartDelay: a new subscription's first deliveries wait for the start
// delay (a Go Micro server registers its subscriber with its router only
// after Subscribe returns), and later ones do not.
func TestStartDelay(t *testing.T) {
	hb := mem.New()
	t.Cleanup(func() { _ = hb.Close(context.Background()) })
	const delay = 300 * time.Millisecond
	b := gomicro.New(hb, gomicro.WithStartDelay(delay))
	if err := b.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Disconnect() })
	topic := topicFor(t)
	got := make(chan time.Time, 2)
	before := time.Now()
	subscribe(t, b, topic, func(mb.Event) error { got <- time.Now(); return nil }, mb.Queue("q"))
	publish(t, b, topic, "first", nil)
	if first := <-got; first.Sub(before) < delay {
		t.Errorf("first delivery %v after Subscribe was called, want at least %v", first.Sub(before), delay)
	}
	sent := time.Now()
	publish(t, b, topic, "second", nil)
	if second := <-got; second.Sub(sent) >= delay {
		t.Errorf("second delivery waited %v: the delay is for the start only", second.Sub(sent))
	}
}
