package brokertest

import (
	"testing"
	"time"
)

// Features declares what a backend promises beyond the behaviours every
// backend must have, and tunes the suite's timing to the backend. The zero
// value declares no optional feature and uses the defaults below.
type Features struct {
	// Persistent: durable queue groups keep the messages published while the
	// group has no live member, and deliver them when a member joins (after
	// the last member unsubscribed, or its client closed). It also enables
	// AbandonedDeliveryRedelivered: a delivery whose handler outlives
	// Close's context goes to another member.
	Persistent bool

	// OrderedPerPublisher: the messages one goroutine publishes one after
	// the other reach a Concurrency(1) queue-group member in publish order
	// (redeliveries aside).
	OrderedPerPublisher bool

	// Restart, when non-nil, stops the backend's server and starts it again,
	// and returns once it accepts connections. The clients opened before
	// must recover on their own (reconnect, resubscribe) and lose no
	// acknowledged message. Nil skips Restart.
	Restart func(t *testing.T)

	// MaxMessageSize is the largest body, with a few short headers, that the
	// backend promises to carry. 0 means 1 MiB.
	MaxMessageSize int

	// SettleTime is how long the suite waits to see that nothing more
	// arrives: no duplicate after the expected deliveries, no delivery after
	// Unsubscribe, a call that must still be blocked. It bounds a quiet
	// period, so it only makes a check weaker when too short and the suite
	// slower when too long. 0 means 200ms.
	SettleTime time.Duration

	// Timeout is how long the suite waits for something that must happen
	// (a delivery, a count to grow, a call to return) before it fails the
	// test. Waits for many messages fail when the count stops growing for
	// Timeout, not after a fixed total. 0 means 10s.
	Timeout time.Duration

	// AckWait is the [broker.AckWait] the suite gives subscriptions whose
	// lost or abandoned deliveries must come back, so that they come back
	// soon. Backends with a coarser minimum (seconds) set theirs. 0 means
	// 500ms.
	AckWait time.Duration

	// ClockSkew is how far [broker.Message.PublishedAt] (taken by the
	// server) may be from the test's clock around Publish. 0 means 1s.
	ClockSkew time.Duration

	// Skip names behaviours (subtest names, see [Behaviours]) to skip, each
	// with the reason the subtest reports. A gap is declared here, with its
	// reason, rather than hidden. Run fails on a name it does not know.
	Skip map[string]string
}

// Defaults of the zero Features fields.
const (
	DefaultMaxMessageSize = 1 << 20
	DefaultSettleTime     = 200 * time.Millisecond
	DefaultTimeout        = 10 * time.Second
	DefaultAckWait        = 500 * time.Millisecond
	DefaultClockSkew      = time.Second
)

func (f Features) withDefaults() Features {
	if f.MaxMessageSize <= 0 {
		f.MaxMessageSize = DefaultMaxMessageSize
	}
	if f.SettleTime <= 0 {
		f.SettleTime = DefaultSettleTime
	}
	if f.Timeout <= 0 {
		f.Timeout = DefaultTimeout
	}
	if f.AckWait <= 0 {
		f.AckWait = DefaultAckWait
	}
	if f.ClockSkew <= 0 {
		f.ClockSkew = DefaultClockSkew
	}
	return f
}
