package watermill

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	wm "github.com/ThreeDotsLabs/watermill/message"

	"github.com/herald-dev/herald/broker"
)

// Defaults of [SubscriberConfig] and [PublisherConfig].
const (
	// DefaultGroup is the queue group of subscribers that name none.
	DefaultGroup = "watermill"
	// DefaultMaxAttempts is high because Watermill redelivers a nacked
	// message until it is acknowledged.
	DefaultMaxAttempts = 1 << 20
	// DefaultCloseTimeout bounds Close and the end of a subscription.
	DefaultCloseTimeout = 30 * time.Second
	// DefaultPublishTimeout bounds one Publish call.
	DefaultPublishTimeout = 30 * time.Second
)

// DefaultBackoff spaces the redeliveries of nacked messages: Watermill
// handlers nack to retry, and expect the retry soon.
var DefaultBackoff = broker.Backoff{Initial: 10 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.2}

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("watermill: closed")

// errNacked is the handler error of a nacked message.
var errNacked = errors.New("watermill: message nacked")

// errStopped is the handler error of a message whose subscription ended
// before it was acknowledged.
var errStopped = errors.New("watermill: subscription ended before the message was acknowledged")

// PublisherConfig configures a [Publisher]. The zero value works.
type PublisherConfig struct {
	// PublishTimeout bounds each Publish call ([DefaultPublishTimeout]
	// when 0). Watermill's Publish takes no context, and a message's own
	// context is not the publish's.
	PublishTimeout time.Duration
}

// Publisher is a Watermill message.Publisher over a Herald broker. It is
// safe for concurrent use.
type Publisher struct {
	b   broker.Broker
	cfg PublisherConfig

	mu     sync.RWMutex
	closed bool
}

var _ wm.Publisher = (*Publisher)(nil)

// NewPublisher returns a Publisher that publishes through b. Closing the
// Publisher does not close b: the caller owns it.
func NewPublisher(b broker.Broker, cfg PublisherConfig) (*Publisher, error) {
	if b == nil {
		return nil, errors.New("watermill: publisher: nil broker")
	}
	if cfg.PublishTimeout < 0 {
		return nil, fmt.Errorf("watermill: publisher: negative publish timeout %v", cfg.PublishTimeout)
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	return &Publisher{b: b, cfg: cfg}, nil
}

// Publish publishes msgs to topic, in order, each returning once the
// backend durably accepted it. It stops at the first error: the messages
// before it were published, the others were not.
func (p *Publisher) Publish(topic string, msgs ...*wm.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.PublishTimeout)
	defer cancel()
	for i, msg := range msgs {
		if msg == nil {
			return fmt.Errorf("watermill: publish to %q: message %d is nil", topic, i)
		}
		if err := p.b.Publish(ctx, topic, toHerald(msg)); err != nil {
			return fmt.Errorf("watermill: publish message %d (%s) of %d to %q: %w", i, msg.UUID, len(msgs), topic, err)
		}
	}
	return nil
}

// Close makes later Publish calls fail with [ErrClosed], once those in
// flight returned. It does not close the broker.
func (p *Publisher) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

// toHerald converts a Watermill message. Herald does not keep the message
// after Publish returns, so nothing is copied.
func toHerald(msg *wm.Message) *broker.Message {
	var h broker.Header
	if len(msg.Metadata) > 0 {
		h = broker.Header(msg.Metadata)
	}
	return &broker.Message{ID: msg.UUID, Header: h, Body: msg.Payload}
}

// fromHerald converts a delivered message: a copy, because the Watermill
// message outlives the handler.
func fromHerald(m *broker.Message) *wm.Message {
	msg := wm.NewMessage(m.ID, append(wm.Payload(nil), m.Body...))
	if len(m.Header) > 0 {
		msg.Metadata = wm.Metadata(maps.Clone(map[string]string(m.Header)))
	}
	return msg
}
