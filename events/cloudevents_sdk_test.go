package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/events"
)

// TestUserRegisteredReadByCloudEventsSDK hands Herald's user.registered, as
// a broker carries it (headers and body), to the official CloudEvents Go SDK
// in binary content mode over its HTTP binding, where each ce- header is an
// attribute and the body is the data, and checks what the SDK reads.
func TestUserRegisteredReadByCloudEventsSDK(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 30, 45, 123456789, time.UTC)
	u := events.UserRegistered{ID: "0193a1b2-user", Name: "Ada Lovelace", Email: "ada@example.com", RegisteredAt: at}
	m, err := events.NewUserRegistered("herald/user", u)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(m.Body))
	for k, v := range m.Header {
		req.Header.Set(k, v)
	}

	msg := cehttp.NewMessageFromHttpRequest(req)
	if enc := msg.ReadEncoding(); enc != binding.EncodingBinary {
		t.Fatalf("the SDK sees encoding %v, want binary", enc)
	}
	e, err := binding.ToEvent(context.Background(), msg)
	if err != nil {
		t.Fatalf("the SDK cannot read the event: %v", err)
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("the SDK finds the event invalid: %v", err)
	}
	if e.ID() != m.ID || e.ID() != m.Header.Get(events.HeaderID) {
		t.Errorf("id %q, want %q (the message ID)", e.ID(), m.ID)
	}
	if e.Source() != "herald/user" || e.Type() != events.TypeUserRegistered || e.SpecVersion() != events.SpecVersion {
		t.Errorf("source %q, type %q, specversion %q", e.Source(), e.Type(), e.SpecVersion())
	}
	if !e.Time().Equal(at) {
		t.Errorf("time %v, want %v", e.Time(), at)
	}
	if e.DataContentType() != events.ContentTypeJSON {
		t.Errorf("datacontenttype %q, want %q", e.DataContentType(), events.ContentTypeJSON)
	}
	var got events.UserRegistered
	if err := e.DataAs(&got); err != nil {
		t.Fatalf("data: %v", err)
	}
	if got != (events.UserRegistered{ID: u.ID, Name: u.Name, Email: u.Email, RegisteredAt: at}) {
		t.Errorf("data %+v, want %+v", got, u)
	}
	// Nothing but the four JSON fields: no password, no hash.
	var fields map[string]any
	if err := json.Unmarshal(e.Data(), &fields); err != nil || len(fields) != 4 {
		t.Errorf("data has fields %v (%v), want id, name, email, registered_at", fields, err)
	}

	// And the way back: an event the SDK writes in binary mode is one
	// Herald's decoder accepts.
	out := httptest.NewRecorder()
	if err := cehttp.WriteResponseWriter(context.Background(), binding.ToMessage(e), http.StatusOK, out); err != nil {
		t.Fatal(err)
	}
	back := &broker.Message{Header: broker.Header{}, Body: out.Body.Bytes()}
	for k := range out.Header() {
		back.Header[strings.ToLower(k)] = out.Header().Get(k)
	}
	dec, err := events.DecodeUserRegistered(back)
	if err != nil {
		t.Fatalf("Herald cannot decode what the SDK wrote (headers %v): %v", back.Header, err)
	}
	if dec.Email != u.Email || !dec.RegisteredAt.Equal(at) {
		t.Errorf("round trip: %+v", dec)
	}
}
