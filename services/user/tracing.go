package user

import (
	"fmt"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/tracing"
)

// WithTracing makes Create write the trace context of its request into the
// user.registered event it stores, inside a span "outbox add
// user.registered" of tp, with the propagator p ([tracing.Propagator] when
// nil). The relay publishes the event later, and a broker wrapped with
// [tracing.Wrap] continues the request's trace from the event's headers.
func WithTracing(tp trace.TracerProvider, p propagation.TextMapPropagator) Option {
	return func(s *Service) error {
		if tp == nil {
			return fmt.Errorf("user: %w: nil tracer provider", broker.ErrInvalidOption)
		}
		if p == nil {
			p = tracing.Propagator()
		}
		s.store.tracer, s.store.prop = tp.Tracer(tracing.ScopeName), p
		return nil
	}
}

// traceHTTP wraps the API handler in a server span per request, named by
// method and path ("POST /herald.user.v1.UserService/Create"), continuing
// the caller's trace when the request carries a traceparent.
func traceHTTP(h http.Handler, tp trace.TracerProvider, p propagation.TextMapPropagator) http.Handler {
	return otelhttp.NewHandler(h, "user",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(p),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
	)
}
