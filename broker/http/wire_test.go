package httpbroker

import (
	"bytes"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
)

func encode(topic string, msgs []*broker.Message) []byte {
	body := appendBatchHeader(nil, topic, len(msgs))
	for _, m := range msgs {
		body = appendBatchEntry(body, m.Attempt, appendStored(nil, m.ID, m.PublishedAt, m.Header, m.Body))
	}
	return body
}

func TestBatchRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	in := []*broker.Message{
		{ID: "a", Attempt: 1, PublishedAt: at},
		{ID: "b", Attempt: 7, PublishedAt: at, Header: broker.Header{"k": "v", "": "", "é": "\x00\xff"}, Body: []byte{0, 1, 2}},
		{ID: "c", Attempt: maxAttempt, PublishedAt: time.Unix(0, -5), Body: bytes.Repeat([]byte{'x'}, 1000)},
	}
	topic, out, err := decodeBatch(encode("t.x", in), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if topic != "t.x" || len(out) != len(in) {
		t.Fatalf("topic %q, %d messages", topic, len(out))
	}
	for i, m := range out {
		w := in[i]
		if m.ID != w.ID || m.Attempt != w.Attempt || !m.PublishedAt.Equal(w.PublishedAt) || !bytes.Equal(m.Body, w.Body) ||
			m.Topic != "t.x" || (len(w.Header) > 0 && !maps.Equal(m.Header, w.Header)) || (len(w.Header) == 0 && m.Header != nil) {
			t.Errorf("message %d: got %+v, want %+v", i, m, w)
		}
	}
}

func TestDecodeBatchRefuses(t *testing.T) {
	good := encode("t", []*broker.Message{{ID: "a", Attempt: 1, Body: []byte("x")}})
	cases := map[string][]byte{
		"empty":                      nil,
		"bad magic":                  append([]byte("XXXX"), good[4:]...),
		"truncated":                  good[:len(good)-1],
		"trailing bytes":             append(bytes.Clone(good), 0),
		"zero messages":              appendBatchHeader(nil, "t", 0),
		"too many":                   appendBatchHeader(nil, "t", maxBatchMessages+1),
		"count too big for the data": append(appendBatchHeader(nil, "t", 1000), make([]byte, 10)...),
		"attempt 0":                  encode("t", []*broker.Message{{ID: "a"}}),
		"empty id":                   encode("t", []*broker.Message{{Attempt: 1}}),
		"too large":                  encode("t", []*broker.Message{{ID: "a", Attempt: 1, Body: make([]byte, 2000)}}),
		"duplicate header": func() []byte {
			b := appendBatchHeader(nil, "t", 1)
			b = append(b, 1, 1, 'a', 0, 2, 1, 'k', 0, 1, 'k', 0, 0)
			return b
		}(),
	}
	for name, data := range cases {
		if _, _, err := decodeBatch(data, 1024); !errors.Is(err, errMalformed) {
			t.Errorf("%s: %v, want errMalformed", name, err)
		}
	}
}

// FuzzDecodeBatch: the delivery endpoint's decoder never panics, never
// allocates beyond what the input can describe, and what it accepts
// re-encodes to something it decodes the same way.
func FuzzDecodeBatch(f *testing.F) {
	at := time.Unix(1700000000, 0)
	f.Add(encode("a", []*broker.Message{{ID: "a", Attempt: 1, PublishedAt: at}}))
	f.Add(encode("user.registered", []*broker.Message{
		{ID: "0190-1", Attempt: 2, PublishedAt: at, Header: broker.Header{"ce-type": "user.registered", "x": ""}, Body: []byte(`{"id":"u1"}`)},
		{ID: "0190-2", Attempt: 1, PublishedAt: at, Body: []byte{0, 0xff}},
	}))
	f.Add([]byte("HRB1"))
	f.Add([]byte("HRB1\x01t\x01\x01\x01a\x00\x00\x00"))
	f.Add(append(appendBatchHeader(nil, "t", maxBatchMessages), 1, 1, 'a'))
	f.Fuzz(func(t *testing.T, data []byte) {
		topic, msgs, err := decodeBatch(data, 1<<16)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		if len(msgs) == 0 || len(msgs) > maxBatchMessages {
			t.Fatalf("%d messages accepted", len(msgs))
		}
		again, msgs2, err := decodeBatch(encode(topic, msgs), 1<<16)
		if err != nil {
			t.Fatalf("re-encoded batch refused: %v", err)
		}
		if again != topic || len(msgs2) != len(msgs) {
			t.Fatalf("re-encoded batch decodes to %q with %d messages, want %q with %d", again, len(msgs2), topic, len(msgs))
		}
		for i := range msgs {
			a, b := msgs[i], msgs2[i]
			if a.ID != b.ID || a.Attempt != b.Attempt || !a.PublishedAt.Equal(b.PublishedAt) || !bytes.Equal(a.Body, b.Body) || !maps.Equal(a.Header, b.Header) {
				t.Fatalf("message %d differs after re-encoding: %+v vs %+v", i, a, b)
			}
		}
	})
}
