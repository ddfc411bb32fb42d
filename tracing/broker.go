package tracing

import (
	"context"
	"maps"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/herald-dev/herald/broker"
)

// ScopeName is the instrumentation scope of Herald's spans.
const ScopeName = "github.com/herald-dev/herald"

// Attribute keys, after OpenTelemetry's messaging conventions.
const (
	AttrSystem      = attribute.Key("messaging.system")
	AttrDestination = attribute.Key("messaging.destination.name")
	AttrGroup       = attribute.Key("messaging.consumer.group.name")
	AttrMessageID   = attribute.Key("messaging.message.id")
	AttrOperation   = attribute.Key("messaging.operation.type")
	AttrAttempt     = attribute.Key("herald.attempt")
)

// Broker is a [broker.Broker] that traces publishes and deliveries. Make one
// with [Wrap].
type Broker struct {
	b      broker.Broker
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

var (
	_ broker.Broker        = (*Broker)(nil)
	_ broker.GroupDeclarer = (*Broker)(nil)
)

// Wrap returns b traced with tp (no tracing when nil) and p ([Propagator]
// when nil): a [*Broker], which also implements [broker.DeadLetterBrowser]
// when b does. Closing the result closes b.
func Wrap(b broker.Broker, tp trace.TracerProvider, p propagation.TextMapPropagator) broker.Broker {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	if p == nil {
		p = Propagator()
	}
	w := &Broker{b: b, tracer: tp.Tracer(ScopeName), prop: p}
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

// Publish starts a producer span, parented on the trace context in m's
// headers when there is one (a message written earlier, by an outbox),
// else on ctx; it publishes a copy of m whose headers carry the span's
// context. m itself gets only its ID set, as the contract allows.
func (w *Broker) Publish(ctx context.Context, topic string, m *broker.Message, opts ...broker.PublishOption) error {
	if m == nil {
		return w.b.Publish(ctx, topic, m, opts...) // the backend refuses it
	}
	parent := ctx
	if m.Header.Get("traceparent") != "" {
		parent = w.prop.Extract(ctx, HeaderCarrier(m.Header))
	}
	sctx, span := w.tracer.Start(parent, topic+" publish", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(AttrSystem.String("herald"), AttrDestination.String(topic), AttrOperation.String("send")))
	defer span.End()
	c := *m
	c.Header = maps.Clone(m.Header)
	if c.Header == nil {
		c.Header = broker.Header{}
	}
	w.prop.Inject(sctx, HeaderCarrier(c.Header))
	// Publish under the caller's ctx (its deadline) but with the span.
	err := w.b.Publish(trace.ContextWithSpan(ctx, span), topic, &c, opts...)
	m.ID = c.ID
	span.SetAttributes(AttrMessageID.String(c.ID))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
	}
	return err
}

// Subscribe subscribes with h wrapped in a consumer span per delivery.
func (w *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	o, err := broker.NewSubscribeOptions(topic, h, opts...)
	if err != nil {
		return w.b.Subscribe(ctx, topic, h, opts...) // the backend reports the same error
	}
	return w.b.Subscribe(ctx, topic, Handler(w.tracer, w.prop, o.Queue, h), opts...)
}

// Close closes the wrapped broker.
func (w *Broker) Close(ctx context.Context) error { return w.b.Close(ctx) }

// DeclareGroup declares the queue group on the wrapped broker (see
// [broker.DeclareGroup]); it fails with [errors.ErrUnsupported] when that
// broker cannot.
func (w *Broker) DeclareGroup(ctx context.Context, topic, group string) error {
	return broker.DeclareGroup(ctx, w.b, topic, group)
}

// As passes target on to the wrapped broker (see [broker.As]).
func (w *Broker) As(target any) bool { return broker.As(w.b, target) }

// Unwrap returns the wrapped broker.
func (w *Broker) Unwrap() broker.Broker { return w.b }

// Handler wraps h, subscribed in queue group queue ("" for broadcast), so
// that each delivery runs in a consumer span parented on the trace context
// of the message's headers. [Wrap] does it for every subscription.
func Handler(tracer trace.Tracer, p propagation.TextMapPropagator, queue string, h broker.Handler) broker.Handler {
	if p == nil {
		p = Propagator()
	}
	return func(ctx context.Context, m *broker.Message) error {
		ctx = p.Extract(ctx, HeaderCarrier(m.Header))
		ctx, span := tracer.Start(ctx, m.Topic+" process", trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(AttrSystem.String("herald"), AttrDestination.String(m.Topic), AttrGroup.String(queue),
				AttrMessageID.String(m.ID), AttrOperation.String("process"), AttrAttempt.Int(m.Attempt)))
		defer span.End()
		err := h(ctx, m)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "handler failed")
		}
		return err
	}
}
