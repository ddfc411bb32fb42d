// Package tracing carries OpenTelemetry traces across Herald's broker, so
// that one trace runs from the request that caused an event to every
// handler of that event.
//
// The trace context travels in the message headers as W3C Trace Context
// (`traceparent`, `tracestate`) through [HeaderCarrier], which adapts a
// [broker.Header] to OpenTelemetry's propagation.TextMapCarrier. A producer
// that writes a message now and publishes it later (the transactional
// outbox) injects the context when it writes the message; [Broker], the
// decorator [Wrap] returns, then parents its publish span on the context
// found in the headers, re-injects its own, and starts a consumer span for
// every delivery, parented on the headers, around the handler.
//
// Spans:
//
//	<topic> publish   producer span of a Publish call
//	<topic> process   consumer span of a delivery (attributes: topic, queue
//	                  group, message ID, attempt; status error when the
//	                  handler failed)
//
// [Setup] builds a TracerProvider from configuration (none, stdout or
// OTLP over gRPC); [LogHandler] adds trace_id and span_id to log records
// made with a context that carries a span. Nothing here touches
// OpenTelemetry's global state: providers and propagators are passed down.
package tracing
