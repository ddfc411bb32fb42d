package events_test

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/events"
)

func sample(t testing.TB) *broker.Message {
	t.Helper()
	m, err := events.NewUserRegistered("herald/user", events.UserRegistered{
		ID: "u-1", Name: "Ada Lovelace", Email: "ada@example.com",
		RegisteredAt: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestUserRegisteredRoundTrip(t *testing.T) {
	m := sample(t)
	if m.ID == "" || m.Header.Get(events.HeaderID) != m.ID {
		t.Fatalf("event id %q, ce-id %q: want equal and set", m.ID, m.Header.Get(events.HeaderID))
	}
	got, err := events.DecodeUserRegistered(m)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "u-1" || got.Email != "ada@example.com" || got.Name != "Ada Lovelace" || !got.RegisteredAt.Equal(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("decoded %+v", got)
	}
	for _, secret := range []string{"password", "hash"} {
		if strings.Contains(strings.ToLower(string(m.Body)), secret) {
			t.Fatalf("event body mentions %q: %s", secret, m.Body)
		}
	}
}

func TestDecodeUserRegisteredRejects(t *testing.T) {
	cases := map[string]func(m *broker.Message){
		"wrong type":        func(m *broker.Message) { m.Header[events.HeaderType] = "other" },
		"wrong specversion": func(m *broker.Message) { m.Header[events.HeaderSpecVersion] = "0.3" },
		"no id":             func(m *broker.Message) { delete(m.Header, events.HeaderID) },
		"no source":         func(m *broker.Message) { delete(m.Header, events.HeaderSource) },
		"xml":               func(m *broker.Message) { m.Header[events.HeaderContentType] = "application/xml" },
		"bad time":          func(m *broker.Message) { m.Header[events.HeaderTime] = "yesterday" },
		"not json":          func(m *broker.Message) { m.Body = []byte("{") },
		"trailing data":     func(m *broker.Message) { m.Body = append(m.Body, []byte(`{}`)...) },
		"missing email":     func(m *broker.Message) { m.Body = []byte(`{"id":"u","registered_at":"2026-01-01T00:00:00Z"}`) },
		"missing id":        func(m *broker.Message) { m.Body = []byte(`{"email":"a@b.c","registered_at":"2026-01-01T00:00:00Z"}`) },
		"missing time":      func(m *broker.Message) { m.Body = []byte(`{"id":"u","email":"a@b.c"}`) },
		"display-name email": func(m *broker.Message) {
			m.Body = []byte(`{"id":"u","email":"Eve <e@x.y>","registered_at":"2026-01-01T00:00:00Z"}`)
		},
		"huge body": func(m *broker.Message) { m.Body = make([]byte, events.MaxEventBody+1) },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			m := sample(t)
			m.Header = maps.Clone(m.Header)
			mutate(m)
			if _, err := events.DecodeUserRegistered(m); !errors.Is(err, events.ErrBadEvent) {
				t.Fatalf("err = %v, want ErrBadEvent", err)
			}
		})
	}
}

func FuzzDecodeUserRegistered(f *testing.F) {
	good := sample(f)
	f.Add(good.Body, good.Header.Get(events.HeaderType), good.Header.Get(events.HeaderTime))
	f.Add([]byte(`{"id":"x","email":"a@b","registered_at":"2026-01-01T00:00:00Z"}`), events.TypeUserRegistered, "2026-01-01T00:00:00Z")
	f.Add([]byte(`[]`), "", "")
	f.Fuzz(func(t *testing.T, body []byte, typ, tm string) {
		m := sample(t)
		m.Body = body
		m.Header[events.HeaderType] = typ
		m.Header[events.HeaderTime] = tm
		u, err := events.DecodeUserRegistered(m)
		if err != nil {
			if !errors.Is(err, events.ErrBadEvent) {
				t.Fatalf("error %v does not wrap ErrBadEvent", err)
			}
			return
		}
		// Whatever decodes must survive a re-encode and decode unchanged.
		again, err := events.NewUserRegistered("fuzz", u)
		if err != nil {
			t.Fatal(err)
		}
		u2, err := events.DecodeUserRegistered(again)
		if err != nil || u2.ID != u.ID || u2.Email != u.Email || u2.Name != u.Name {
			t.Fatalf("re-decode: %+v, %v; want %+v", u2, err, u)
		}
	})
}
