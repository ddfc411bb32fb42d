package system_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/internal/system"
)

// TestOneTracePerRegistration registers one user with tracing on, recording
// spans in memory: the request, the outbox, the broker's publish and
// delivery, the email handler and the SMTP send all share one trace, each
// span a child of the one before.
func TestOneTracePerRegistration(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	s, client := start(t, func(c *system.Config) { c.TracerProvider = tp })

	if _, err := client.Create(context.Background(), connect.NewRequest(&userv1.CreateRequest{
		Name: "Grace Hopper", Email: "grace@example.com", Password: "correct horse battery staple",
	})); err != nil {
		t.Fatal(err)
	}
	waitMails(t, s.MailboxDir, 1)

	chain := []string{ // each the parent of the next
		"POST /herald.user.v1.UserService/Create",
		"outbox add user.registered",
		"user.registered publish",
		"user.registered process",
		"email welcome",
		"smtp send",
	}
	// Walk up from the SMTP send, parent by parent, to the request. Other
	// subscribers (the console watches the topic) add their own process
	// spans to the trace, beside this chain.
	var all []sdktrace.ReadOnlySpan
	var path []sdktrace.ReadOnlySpan
	deadline := time.Now().Add(10 * time.Second)
	for {
		all = rec.Ended()
		byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
		var leaf sdktrace.ReadOnlySpan
		for _, sp := range all {
			byID[sp.SpanContext().SpanID()] = sp
			if sp.Name() == chain[len(chain)-1] {
				if leaf != nil {
					t.Fatalf("two %q spans for one registration", sp.Name())
				}
				leaf = sp
			}
		}
		path = path[:0]
		for sp := leaf; sp != nil; sp = byID[sp.Parent().SpanID()] {
			path = append([]sdktrace.ReadOnlySpan{sp}, path...)
			if !sp.Parent().IsValid() {
				break
			}
		}
		if len(path) == len(chain) && !path[0].Parent().IsValid() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ended spans %v; path to the SMTP send %v, want %v", names(all), names(path), chain)
		}
		time.Sleep(10 * time.Millisecond) // polling the recorder; nothing to wait on
	}
	if got := names(path); !slices.Equal(got, chain) {
		t.Fatalf("chain of spans %v, want %v", got, chain)
	}
	root := path[0]
	for _, sp := range all {
		if sp.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("span %q is in trace %s, not the registration's %s", sp.Name(), sp.SpanContext().TraceID(), root.SpanContext().TraceID())
		}
		for _, a := range sp.Attributes() {
			if v := a.Value.String(); strings.Contains(v, "correct horse") || strings.Contains(v, "$2a$") {
				t.Errorf("span %q attribute %s carries a secret", sp.Name(), a.Key)
			}
		}
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name())
	}
	return n
}
