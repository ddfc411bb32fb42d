package kafka

import (
	"strconv"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Record headers the backend uses to carry a message's fields. They are in
// Herald's reserved "herald-" space: given by a publisher they are dropped,
// and they never reach a handler.
const (
	headerTopic     = "herald-topic"      // a redelivery's original topic
	headerAttempt   = "herald-attempt"    // a redelivery's attempt number
	headerNotBefore = "herald-not-before" // a redelivery's due time, Unix milliseconds
)

// internal reports whether a header name is one the backend sets.
func internal(name string) bool {
	switch name {
	case broker.HeaderID, broker.HeaderPublishedAt, headerTopic, headerAttempt, headerNotBefore:
		return true
	}
	return false
}

// newRecord returns the record that publishes m to topic: the key is key,
// or the message ID when key is empty (spreading messages over partitions);
// the value a copy of the body; the headers m's, plus its ID.
func newRecord(topic, key string, m *broker.Message) *kgo.Record {
	if key == "" {
		key = m.ID
	}
	hs := make([]kgo.RecordHeader, 0, len(m.Header)+1)
	for k, v := range m.Header {
		if internal(k) {
			continue
		}
		hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	hs = append(hs, kgo.RecordHeader{Key: broker.HeaderID, Value: []byte(m.ID)})
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: clone(m.Body), Headers: hs}
}

// retryRecord returns the record that redelivers m, received in rec, through
// the retry topic rt: attempt next, due at notBefore, with m's original
// topic and publication time.
func retryRecord(rt string, rec *kgo.Record, m *broker.Message, next int, notBefore time.Time) *kgo.Record {
	r := newRecord(rt, string(rec.Key), m)
	r.Key = clone(rec.Key) // keep the original key, even an empty one
	r.Headers = append(r.Headers,
		kgo.RecordHeader{Key: headerTopic, Value: []byte(m.Topic)},
		kgo.RecordHeader{Key: headerAttempt, Value: []byte(strconv.Itoa(next))},
		kgo.RecordHeader{Key: headerNotBefore, Value: []byte(strconv.FormatInt(notBefore.UnixMilli(), 10))},
		kgo.RecordHeader{Key: broker.HeaderPublishedAt, Value: []byte(m.PublishedAt.UTC().Format(time.RFC3339Nano))},
	)
	return r
}

// delivery is a record turned into the message a handler gets, with the
// time it may run (zero: now).
type delivery struct {
	rec       *kgo.Record
	msg       *broker.Message
	notBefore time.Time
}

// decode turns rec into a message. A record that did not come from Herald
// (no ID header) gets the ID "<topic>/<partition>/<offset>", stable across
// redeliveries.
func decode(rec *kgo.Record) delivery {
	m := &broker.Message{Topic: rec.Topic, Attempt: 1, PublishedAt: rec.Timestamp, Body: rec.Value}
	if m.Body == nil {
		m.Body = []byte{}
	}
	d := delivery{rec: rec, msg: m}
	for _, h := range rec.Headers {
		v := string(h.Value)
		switch h.Key {
		case broker.HeaderID:
			m.ID = v
		case headerTopic:
			m.Topic = v
		case headerAttempt:
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				m.Attempt = n
			}
		case headerNotBefore:
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
				d.notBefore = time.UnixMilli(ms)
			}
		case broker.HeaderPublishedAt:
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				m.PublishedAt = t
			}
		default:
			if m.Header == nil {
				m.Header = broker.Header{}
			}
			m.Header[h.Key] = v
		}
	}
	if m.ID == "" {
		m.ID = rec.Topic + "/" + strconv.Itoa(int(rec.Partition)) + "/" + strconv.FormatInt(rec.Offset, 10)
	}
	return d
}

// recordSize is about how many bytes r takes in a batch.
func recordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value) + 32
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 8
	}
	return n
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
