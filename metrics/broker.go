package metrics

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/herald-dev/herald/broker"
)

// Broker is a [broker.Broker] whose publishes and deliveries are counted.
// Make one with [Metrics.Wrap].
type Broker struct {
	b broker.Broker
	m *Metrics
}

var (
	_ broker.Broker        = (*Broker)(nil)
	_ broker.GroupDeclarer = (*Broker)(nil)
)

// Wrap returns b with its publishes and deliveries counted in m: a
// [*Broker], which also implements [broker.DeadLetterBrowser] when b does.
// Closing the result closes b.
func (m *Metrics) Wrap(b broker.Broker) broker.Broker {
	w := &Broker{b: b, m: m}
	if d, ok := b.(broker.DeadLetterBrowser); ok {
		return &browsingBroker{w, d}
	}
	return w
}

// browsingBroker is a [Broker] over a backend that browses dead letters.
type browsingBroker struct {
	*Broker
	broker.DeadLetterBrowser
}

// Publish publishes through the wrapped broker and counts the result.
func (w *Broker) Publish(ctx context.Context, topic string, msg *broker.Message, opts ...broker.PublishOption) error {
	err := w.b.Publish(ctx, topic, msg, opts...)
	if err != nil {
		w.m.publishErrs.WithLabelValues(topic).Inc()
		return err
	}
	w.m.published.WithLabelValues(topic).Inc()
	return nil
}

// Subscribe subscribes to the wrapped broker with h wrapped to count each
// delivery and its outcome.
func (w *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	o, err := broker.NewSubscribeOptions(topic, h, opts...)
	if err != nil {
		return w.b.Subscribe(ctx, topic, h, opts...) // the backend reports the same error
	}
	sub, err := w.b.Subscribe(ctx, topic, w.m.Handler(o, h), opts...)
	if err == nil && o.Queue != "" {
		w.m.mu.Lock()
		if w.m.groups == nil {
			w.m.groups = map[[2]string]bool{}
		}
		w.m.groups[[2]string{topic, o.Queue}] = true
		w.m.mu.Unlock()
	}
	return sub, err
}

// Close closes the wrapped broker.
func (w *Broker) Close(ctx context.Context) error { return w.b.Close(ctx) }

// DeclareGroup declares the queue group on the wrapped broker (see
// [broker.DeclareGroup]); it fails with [errors.ErrUnsupported] when that
// broker cannot.
func (w *Broker) DeclareGroup(ctx context.Context, topic, group string) error {
	return broker.DeclareGroup(ctx, w.b, topic, group)
}

// As passes target on to the wrapped broker (see [broker.As]), so the
// backend's native parts stay reachable through the wrapper.
func (w *Broker) As(target any) bool { return broker.As(w.b, target) }

// Unwrap returns the wrapped broker.
func (w *Broker) Unwrap() broker.Broker { return w.b }

// Handler wraps h, a handler subscribed with the options o, to count its
// deliveries and their outcomes in m. [Metrics.Wrap] does it for every
// subscription; Handler is for handlers run by something else.
func (m *Metrics) Handler(o *broker.SubscribeOptions, h broker.Handler) broker.Handler {
	delivered := m.delivered.WithLabelValues(o.Topic, o.Queue)
	outcomes := [...]struct {
		count   interface{ Inc() }
		latency interface{ Observe(float64) }
	}{
		broker.Ack:        {m.acked.WithLabelValues(o.Topic, o.Queue), m.handlerTime.WithLabelValues(o.Topic, o.Queue, broker.Ack.String())},
		broker.Retry:      {m.nacked.WithLabelValues(o.Topic, o.Queue), m.handlerTime.WithLabelValues(o.Topic, o.Queue, broker.Retry.String())},
		broker.DeadLetter: {m.deadLettered.WithLabelValues(o.Topic, o.Queue), m.handlerTime.WithLabelValues(o.Topic, o.Queue, broker.DeadLetter.String())},
	}
	return func(ctx context.Context, msg *broker.Message) (err error) {
		delivered.Inc()
		start := time.Now()
		defer func() {
			if r := recover(); r != nil {
				// The same error broker.Process makes of a panic, so the
				// backend dead-letters or retries it as usual.
				err = fmt.Errorf("%w: %v\n%s", broker.ErrPanic, r, debug.Stack())
			}
			out := outcomes[Outcome(ctx, msg, o, err)]
			out.latency.Observe(time.Since(start).Seconds())
			out.count.Inc()
		}()
		return h(ctx, msg)
	}
}

// Outcome is what [broker.Process] decides for a delivery of m under o whose
// handler returned err: ack, retry, or dead-letter ([broker.Decide]).
func Outcome(ctx context.Context, m *broker.Message, o *broker.SubscribeOptions, err error) broker.Action {
	return broker.Decide(ctx, m, o, err).Action
}
