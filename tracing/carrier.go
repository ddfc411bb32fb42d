package tracing

import (
	"context"

	"go.opentelemetry.io/otel/propagation"

	"github.com/herald-dev/herald/broker"
)

// HeaderCarrier adapts a message's headers to
// [propagation.TextMapCarrier]. Keys are written as given (the W3C
// propagator uses lower case: traceparent, tracestate).
type HeaderCarrier broker.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the value of key.
func (c HeaderCarrier) Get(key string) string { return c[key] }

// Set sets key to value.
func (c HeaderCarrier) Set(key, value string) { c[key] = value }

// Keys lists the keys present.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Propagator returns the propagator Herald uses: W3C Trace Context and
// Baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Inject writes the trace context of ctx into m's headers (making them if
// nil), with p, or [Propagator] when p is nil. A context without a span
// writes nothing.
func Inject(ctx context.Context, p propagation.TextMapPropagator, m *broker.Message) {
	if p == nil {
		p = Propagator()
	}
	if m.Header == nil {
		m.Header = broker.Header{}
	}
	p.Inject(ctx, HeaderCarrier(m.Header))
}

// Extract returns ctx with the trace context found in h, with p, or
// [Propagator] when p is nil.
func Extract(ctx context.Context, p propagation.TextMapPropagator, h broker.Header) context.Context {
	if p == nil {
		p = Propagator()
	}
	if h == nil {
		return ctx
	}
	return p.Extract(ctx, HeaderCarrier(h))
}
