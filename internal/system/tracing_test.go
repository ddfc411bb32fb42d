package system_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

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
	byName := map[string]sdktrace.ReadOnlySpan{}
	deadline := time.Now().Add(10 * time.Second)
	for len(byName) < len(chain) {
		if time.Now().After(deadline) {
			t.Fatalf("ended spans %v, want %v", names(rec.Ended()), chain)
		}
		time.Sleep(10 * time.Millisecond) // polling the recorder; nothing to wait on
		clear(byName)
		for _, sp := range rec.Ended() {
			for _, n := range chain {
				if sp.Name() == n {
					if prev, dup := byName[n]; dup && prev.SpanContext().SpanID() != sp.SpanContext().SpanID() {
						t.Fatalf("two %q spans for one registration", n)
					}
					byName[n] = sp
				}
			}
		}
	}
	root := byName[chain[0]]
	if root.Parent().IsValid() {
		t.Errorf("the request span has a parent %v; the client sent no trace", root.Parent())
	}
	for i, n := range chain {
		sp := byName[n]
		if sp.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("span %q is in trace %s, want %s", n, sp.SpanContext().TraceID(), root.SpanContext().TraceID())
		}
		if i > 0 && sp.Parent().SpanID() != byName[chain[i-1]].SpanContext().SpanID() {
			t.Errorf("span %q has parent %s, want %q (%s)", n, sp.Parent().SpanID(), chain[i-1], byName[chain[i-1]].SpanContext().SpanID())
		}
		for _, a := range sp.Attributes() {
			if v := a.Value.Emit(); strings.Contains(v, "correct horse") || strings.Contains(v, "$2a$") {
				t.Errorf("span %q attribute %s carries a secret", n, a.Key)
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
