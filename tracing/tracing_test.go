package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/tracing"
)

func recorder(t *testing.T) (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return rec, tp
}

// waitSpans waits until rec has ended n spans.
func waitSpans(t *testing.T, rec *tracetest.SpanRecorder, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		spans := rec.Ended()
		if len(spans) >= n {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d spans ended, want %d", len(spans), n)
		}
		time.Sleep(5 * time.Millisecond) // polling the recorder; nothing to wait on
	}
}

func byName(spans []sdktrace.ReadOnlySpan) map[string]sdktrace.ReadOnlySpan {
	m := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		m[s.Name()] = s
	}
	return m
}

func TestTraceRunsThroughTheBroker(t *testing.T) {
	rec, tp := recorder(t)
	b := tracing.Wrap(mem.New(), tp, nil)
	t.Cleanup(func() { b.Close(context.Background()) })
	ctx := context.Background()
	fail := true
	done := make(chan trace.SpanContext, 2)
	if _, err := b.Subscribe(ctx, "t.x", func(ctx context.Context, m *broker.Message) error {
		done <- trace.SpanContextFromContext(ctx)
		if fail {
			fail = false
			return errors.New("once more")
		}
		return nil
	}, broker.Queue("g"), broker.RetryBackoff(broker.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1})); err != nil {
		t.Fatal(err)
	}

	// An outbox writes the message inside the request's span and publishes
	// it later, from a context without one.
	rctx, req := tp.Tracer("test").Start(ctx, "request")
	m := &broker.Message{Body: []byte("x")}
	tracing.Inject(rctx, nil, m)
	req.End()
	if m.Header.Get("traceparent") == "" {
		t.Fatalf("Inject wrote no traceparent: %v", m.Header)
	}
	before := len(m.Header)
	if err := b.Publish(ctx, "t.x", m); err != nil {
		t.Fatal(err)
	}
	if m.ID == "" || len(m.Header) != before {
		t.Fatalf("Publish: ID %q, headers %v (want the ID set and the headers untouched)", m.ID, m.Header)
	}
	for range 2 {
		select {
		case sc := <-done:
			if sc.TraceID() != req.SpanContext().TraceID() {
				t.Fatalf("handler runs in trace %s, want %s", sc.TraceID(), req.SpanContext().TraceID())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery")
		}
	}
	spans := waitSpans(t, rec, 4) // request, publish, process ×2
	names := byName(spans)
	pub, proc := names["t.x publish"], names["t.x process"]
	if pub == nil || proc == nil {
		t.Fatalf("spans %v", names)
	}
	for _, s := range spans {
		if s.SpanContext().TraceID() != req.SpanContext().TraceID() {
			t.Errorf("span %q in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), req.SpanContext().TraceID())
		}
	}
	if pub.Parent().SpanID() != req.SpanContext().SpanID() || pub.SpanKind() != trace.SpanKindProducer {
		t.Errorf("publish span: parent %s kind %v, want the request's span, producer", pub.Parent().SpanID(), pub.SpanKind())
	}
	if proc.Parent().SpanID() != pub.SpanContext().SpanID() || proc.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("process span: parent %s kind %v, want the publish span, consumer", proc.Parent().SpanID(), proc.SpanKind())
	}
	failed := 0
	for _, s := range spans {
		if s.Name() == "t.x process" && s.Status().Code == 1 /* codes.Error */ {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d process spans failed, want 1 (the first attempt)", failed)
	}
}

func TestPublishWithoutHeadersUsesCtx(t *testing.T) {
	rec, tp := recorder(t)
	b := tracing.Wrap(mem.New(), tp, nil)
	t.Cleanup(func() { b.Close(context.Background()) })
	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
	if err := b.Publish(ctx, "t.y", &broker.Message{}); err != nil {
		t.Fatal(err)
	}
	parent.End()
	pub := byName(waitSpans(t, rec, 2))["t.y publish"]
	if pub == nil || pub.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("publish span %v not a child of the caller's", pub)
	}
	if err := b.Publish(ctx, "bad topic", &broker.Message{}); err == nil {
		t.Fatal("bad topic published")
	}
}

func TestLogHandlerAddsTraceIDs(t *testing.T) {
	_, tp := recorder(t)
	var buf bytes.Buffer
	log := slog.New(tracing.LogHandler(slog.NewJSONHandler(&buf, nil))).With("part", "test")
	ctx, span := tp.Tracer("test").Start(context.Background(), "s")
	log.InfoContext(ctx, "inside")
	span.End()
	log.Info("outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var in, out map[string]any
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &in) != nil || json.Unmarshal([]byte(lines[1]), &out) != nil {
		t.Fatalf("log: %q", buf.String())
	}
	if in["trace_id"] != span.SpanContext().TraceID().String() || in["span_id"] != span.SpanContext().SpanID().String() || in["part"] != "test" {
		t.Errorf("record in a span: %v", in)
	}
	if _, ok := out["trace_id"]; ok {
		t.Errorf("record outside a span has a trace id: %v", out)
	}
}

func TestSetup(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	tp, shutdown, err := tracing.Setup(ctx, tracing.Config{Exporter: "stdout", Writer: &buf, ServiceName: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	_, s := tp.Tracer("test").Start(ctx, "exported")
	s.End()
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"Name":"exported"`) || !strings.Contains(buf.String(), "svc") {
		t.Fatalf("stdout exporter wrote %q", buf.String())
	}
	tp, shutdown, err = tracing.Setup(ctx, tracing.Config{})
	if err != nil || shutdown(ctx) != nil {
		t.Fatalf("none: %v", err)
	}
	if _, s := tp.Tracer("test").Start(ctx, "x"); s.SpanContext().IsValid() {
		t.Fatal("the none exporter records spans")
	}
	for _, bad := range []tracing.Config{{Exporter: "zipkin"}, {Exporter: "stdout"}} {
		if _, _, err := tracing.Setup(ctx, bad); !errors.Is(err, broker.ErrInvalidOption) {
			t.Errorf("Setup(%+v) = %v, want ErrInvalidOption", bad, err)
		}
	}
	// OTLP is lazy: it makes a client without reaching the collector.
	_, shutdown, err = tracing.Setup(ctx, tracing.Config{Exporter: "otlp", OTLPEndpoint: "127.0.0.1:1", OTLPInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	shutdown(sctx)
}

func TestWrapKeepsDeadLetterBrowser(t *testing.T) {
	if _, ok := tracing.Wrap(mem.New(), nil, nil).(broker.DeadLetterBrowser); !ok {
		t.Error("wrapped mem broker lost DeadLetterBrowser")
	}
	plain := struct{ broker.Broker }{mem.New()} // hides the capability
	if _, ok := tracing.Wrap(plain, nil, nil).(broker.DeadLetterBrowser); ok {
		t.Error("wrapped broker claims DeadLetterBrowser its backend lacks")
	}
}
