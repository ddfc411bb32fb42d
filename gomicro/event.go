package gomicro

import (
	"maps"
	"sync"
	"time"

	herald "github.com/herald-dev/herald/broker"
	mb "go-micro.dev/v5/broker"
)

// event is the go-micro Event of one Herald delivery.
type event struct {
	topic string
	msg   *mb.Message
	info  Info

	mu      sync.Mutex
	acked   bool
	settled bool          // the delivery's outcome is decided: Ack can no longer change it
	ackedCh chan struct{} // closed by the first Ack
	err     error
}

var _ mb.Event = (*event)(nil)

func newEvent(m *herald.Message) *event {
	h := make(map[string]string, len(m.Header))
	maps.Copy(h, m.Header)
	var body []byte
	if m.Body != nil {
		body = append(make([]byte, 0, len(m.Body)), m.Body...)
	}
	return &event{
		topic:   m.Topic,
		msg:     &mb.Message{Header: h, Body: body},
		info:    Info{ID: m.ID, Attempt: m.Attempt, PublishedAt: m.PublishedAt},
		ackedCh: make(chan struct{}),
	}
}

// Topic returns the topic the message was published to.
func (e *event) Topic() string { return e.topic }

// Message returns the message: its own copy of the headers and body,
// byte for byte as published, which the handler may keep and change.
func (e *event) Message() *mb.Message { return e.msg }

// Ack acknowledges the message: once the handler returns, it is done and
// not delivered again, whatever the handler returns. It returns nil when the
// message is (or will be) acknowledged, and an error wrapping [ErrSettled]
// when it comes too late: the delivery was already given up on and the
// message goes back for redelivery.
func (e *event) Ack() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.acked {
		return nil
	}
	if e.settled {
		return ErrSettled
	}
	e.acked = true
	close(e.ackedCh)
	return nil
}

// Error returns why the delivery failed: the handler's error, or an error
// wrapping [ErrNotAcked]; nil while the handler runs and when it succeeded.
func (e *event) Error() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// settle fixes the outcome of the delivery: acknowledged when Ack was
// called, else the error err (nil: acknowledged). It returns what the
// Herald handler returns.
func (e *event) settle(err error) (result error, acked bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settled = true
	if e.acked {
		return nil, true
	}
	e.err = err
	return err, false
}

// Info is what Herald knows of a delivery that go-micro's Event does not
// show.
type Info struct {
	// ID is the Herald message ID: the same on every redelivery.
	ID string
	// Attempt counts the deliveries of the message to this subscriber or
	// queue group, from 1.
	Attempt int
	// PublishedAt is when the broker accepted the message.
	PublishedAt time.Time
}

// Delivery returns the Herald delivery behind e, and false when e is not an
// event of this package.
func Delivery(e mb.Event) (Info, bool) {
	ev, ok := e.(*event)
	if !ok {
		return Info{}, false
	}
	return ev.info, true
}
