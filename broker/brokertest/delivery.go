package brokertest

import (
	"bytes"
	"context"
	"maps"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/herald-dev/herald/broker"
)

// testRoundTrip: a message published through one client reaches a
// subscriber on another with its ID, headers and body, and with Topic,
// Attempt 1 and PublishedAt set; Publish sets the caller's m.ID and nothing
// else on it.
func testRoundTrip(e *env) {
	pub, sub := e.client(), e.client()
	topic := e.topic("roundtrip")
	r := newRecorder()
	e.subscribe(sub, topic, r.handler(0, nil))

	m := &broker.Message{Header: broker.Header{"greeting": "hello"}, Body: []byte("hello, world")}
	before := time.Now()
	e.publish(pub, topic, m)
	after := time.Now()
	if m.ID == "" {
		e.Fatal("Publish left m.ID empty: it must set a new ID on the caller's message")
	}
	if m.Topic != "" || m.Attempt != 0 || !m.PublishedAt.IsZero() {
		e.Errorf("Publish set delivery fields on the caller's message: Topic %q, Attempt %d, PublishedAt %v", m.Topic, m.Attempt, m.PublishedAt)
	}
	if string(m.Body) != "hello, world" || len(m.Header) != 1 || m.Header["greeting"] != "hello" {
		e.Errorf("Publish changed the caller's message: header %v, body %q", m.Header, m.Body)
	}

	d := e.waitN(r, 1, "the published message")[0].msg
	if d.ID != m.ID {
		e.Errorf("delivered ID %q, published ID %q", d.ID, m.ID)
	}
	if d.Topic != topic {
		e.Errorf("delivered Topic %q, want %q", d.Topic, topic)
	}
	if d.Attempt != 1 {
		e.Errorf("first delivery has Attempt %d, want 1", d.Attempt)
	}
	skew := e.f.ClockSkew
	if d.PublishedAt.Before(before.Add(-skew)) || d.PublishedAt.After(after.Add(skew)) {
		e.Errorf("PublishedAt %v is not within %v of the Publish call [%v, %v]", d.PublishedAt, skew, before, after)
	}
	if string(d.Body) != "hello, world" {
		e.Errorf("delivered body %q, want %q", d.Body, "hello, world")
	}
	if !maps.Equal(d.Header, m.Header) {
		e.Errorf("delivered header %v, want %v", d.Header, m.Header)
	}
}

// testHeaders: headers arrive exactly as published: names are
// case-sensitive, values may be empty or any UTF-8 text, and no header of
// the backend's own (such as the reserved "herald-" ones it uses to carry
// the ID) is left on the delivered message.
func testHeaders(e *env) {
	pub, sub := e.client(), e.client()
	topic := e.topic("headers")
	r := newRecorder()
	e.subscribe(sub, topic, r.handler(0, nil))

	h := broker.Header{
		"content-type": "application/json",
		"Content-Type": "text/plain; charset=utf-8",
		"X-Trace-Id":   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"empty":        "",
		"unicode":      "héllo wörld ✓ 日本語",
		"punctuation":  `a=b; c:d, "quoted" 'single' \back/slash {}[]<>?!@#$%^&*()+~`,
		"long":         strings.Repeat("0123456789abcdef", 64),
		"under_score":  "1",
		"dotted.name":  "2",
	}
	for i := range 20 {
		h["n"+itoa(i)] = itoa(i * i)
	}
	sent := maps.Clone(h)
	withHeaders := &broker.Message{Header: h, Body: []byte("with headers")}
	noHeaders := &broker.Message{Body: []byte("no headers")}
	e.publish(pub, topic, withHeaders)
	e.publish(pub, topic, noHeaders)

	e.waitIDs(r, []string{withHeaders.ID, noHeaders.ID}, "the two messages")
	if got := r.of(withHeaders.ID)[0].msg.Header; !maps.Equal(got, sent) {
		for k, v := range sent {
			if g, ok := got[k]; !ok || g != v {
				e.Errorf("header %q: got %q (present %v), want %q", k, g, ok, v)
			}
		}
		for k, v := range got {
			if _, ok := sent[k]; !ok {
				e.Errorf("delivered header %q=%q was never published", k, v)
			}
		}
	}
	if got := r.of(noHeaders.ID)[0].msg.Header; len(got) != 0 {
		e.Errorf("a message published without headers was delivered with %v", got)
	}
}

// testBinaryBodies: bodies arrive byte for byte: empty, one byte, every byte
// value, invalid UTF-8, and the largest size the backend promises.
func testBinaryBodies(e *env) {
	pub, sub := e.client(), e.client()
	topic := e.topic("bodies")
	r := newRecorder()
	e.subscribe(sub, topic, r.handler(0, nil))

	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	large := make([]byte, e.f.MaxMessageSize)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range large {
		large[i] = byte(rng.Uint32())
	}
	cases := []struct {
		name string
		body []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"zero byte", []byte{0}},
		{"0xff", []byte{0xff}},
		{"every byte value", all},
		{"every byte value reversed", reversed(all)},
		{"invalid UTF-8", []byte{0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc}},
		{"NULs and CRLFs", []byte("\x00\r\n\x00\r\n\r\n")},
		{"max size " + itoa(len(large)), large},
	}
	ids := make([]string, len(cases))
	for i, c := range cases {
		m := &broker.Message{Header: broker.Header{"case": c.name}, Body: c.body}
		e.publish(pub, topic, m)
		ids[i] = m.ID
	}
	e.waitIDs(r, ids, "the binary bodies")
	for i, c := range cases {
		got := r.of(ids[i])[0].msg
		if !bytes.Equal(got.Body, c.body) {
			e.Errorf("%s: delivered %d bytes that differ from the %d published (first difference at byte %d)",
				c.name, len(got.Body), len(c.body), firstDiff(got.Body, c.body))
		}
		if got.Header.Get("case") != c.name {
			e.Errorf("%s: delivered with header case=%q", c.name, got.Header.Get("case"))
		}
	}
}

func reversed(b []byte) []byte {
	r := make([]byte, len(b))
	for i, c := range b {
		r[len(b)-1-i] = c
	}
	return r
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// testCallerID: an ID set by the caller is kept, not replaced.
func testCallerID(e *env) {
	pub, sub := e.client(), e.client()
	topic := e.topic("callerid")
	r := newRecorder()
	e.subscribe(sub, topic, r.handler(0, nil))

	id := "order-42-" + e.id
	m := &broker.Message{ID: id, Body: []byte("x")}
	e.publish(pub, topic, m)
	if m.ID != id {
		e.Errorf("Publish replaced the caller's ID %q with %q", id, m.ID)
	}
	if got := e.waitN(r, 1, "the message")[0].msg.ID; got != id {
		e.Errorf("delivered ID %q, want the caller's %q", got, id)
	}
}

// testUniqueIDs: the IDs Publish sets are unique, and are the IDs delivered.
func testUniqueIDs(e *env) {
	pub, sub := e.client(), e.client()
	topic := e.topic("ids")
	r := newRecorder()
	e.subscribe(sub, topic, r.handler(0, nil))

	const n = 500
	ids := e.publishN(pub, topic, n, "m")
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" {
			e.Fatal("Publish left an ID empty")
		}
		if seen[id] {
			e.Fatalf("Publish set the ID %q twice", id)
		}
		seen[id] = true
	}
	e.exactlyOnce(r, ids, "messages with generated IDs")
}

// testPublishDoesNotKeepMessage: Publish does not keep the caller's message:
// changing its body and headers after Publish returns changes nothing
// delivered.
func testPublishDoesNotKeepMessage(e *env) {
	pub, sub := e.client(), e.client()
	topic := e.topic("nokeep")
	r := newRecorder()
	e.subscribe(sub, topic, r.handler(0, nil))

	body := []byte("original")
	h := broker.Header{"k": "original"}
	m := &broker.Message{Header: h, Body: body}
	e.publish(pub, topic, m)
	id := m.ID
	copy(body, "CHANGED!")
	h["k"] = "changed"
	h["added"] = "after publish"
	m.ID = "changed-id"

	d := e.waitN(r, 1, "the message")[0].msg
	if d.ID != id || string(d.Body) != "original" || len(d.Header) != 1 || d.Header["k"] != "original" {
		e.Errorf("delivered ID %q header %v body %q; want what was published: ID %q header map[k:original] body \"original\"",
			d.ID, d.Header, d.Body, id)
	}
}

// testPublishBatch: broker.PublishBatch, through the backend's
// BatchPublisher or the fallback, sets every ID and delivers every message
// once.
func testPublishBatch(e *env) {
	pub, sub := e.client(), e.client()
	topic := e.topic("batch")
	r := newRecorder()
	e.subscribe(sub, topic, r.handler(0, nil))

	const n = 200
	ms := make([]*broker.Message, n)
	for i := range ms {
		ms[i] = &broker.Message{Header: broker.Header{"i": itoa(i)}, Body: []byte("batch " + itoa(i))}
		if i%10 == 0 {
			ms[i].ID = "batch-" + e.id + "-" + itoa(i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
	defer cancel()
	if err := broker.PublishBatch(ctx, pub, topic, ms); err != nil {
		e.Fatalf("PublishBatch: %v", err)
	}
	_, native := pub.(broker.BatchPublisher)
	e.Logf("backend implements broker.BatchPublisher: %v", native)
	ids := make([]string, n)
	for i, m := range ms {
		if m.ID == "" {
			e.Fatalf("PublishBatch left the ID of message %d empty", i)
		}
		if i%10 == 0 && m.ID != "batch-"+e.id+"-"+itoa(i) {
			e.Errorf("PublishBatch replaced the caller's ID of message %d with %q", i, m.ID)
		}
		ids[i] = m.ID
	}
	e.exactlyOnce(r, ids, "batch-published messages")
	for i, id := range ids {
		d := r.of(id)
		if len(d) > 0 && (string(d[0].msg.Body) != "batch "+itoa(i) || d[0].msg.Header.Get("i") != itoa(i)) {
			e.Errorf("message %d delivered with header %v body %q", i, d[0].msg.Header, d[0].msg.Body)
		}
	}
}
