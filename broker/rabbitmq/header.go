package rabbitmq

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/herald-dev/herald/broker"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Herald's own AMQP headers. They are in the reserved "herald-" space and
// never reach a handler.
const (
	// headerEscaped carries the user headers AMQP or RabbitMQ would not
	// carry as they are (see safeName), encoded by appendPair.
	headerEscaped = "herald-hdr"
	// headerAttempt is the attempt of a redelivered message's next delivery
	// (absent: 1). Redeliveries are copies published by Herald, so it
	// counts attempts on classic and quorum queues alike.
	headerAttempt = "herald-attempt"
	// headerTopic is the topic of a redelivered message, whose routing key is
	// a queue's name.
	headerTopic = "herald-topic"
	// headerDeliveryCount is set by quorum queues on a message returned to
	// the queue (consumer gone, nack with requeue).
	headerDeliveryCount = "x-delivery-count"
)

// own reports whether name is one of Herald's transport headers.
func own(name string) bool {
	switch name {
	case headerEscaped, headerAttempt, headerTopic, broker.HeaderID, broker.HeaderPublishedAt:
		return true
	}
	return false
}

// safeName reports whether a user header can travel under its own name: a
// non-empty short string that RabbitMQ gives no meaning to. RabbitMQ reads
// "x-…" headers (x-delay, x-match, x-death…) and "CC"/"BCC" (sender-selected
// routing: a "CC" header would copy the message to other topics), so those
// are escaped, as are Herald's own names.
func safeName(k string) bool {
	if k == "" || len(k) > 255 || own(k) {
		return false
	}
	if len(k) >= 2 && (k[0] == 'x' || k[0] == 'X') && k[1] == '-' {
		return false
	}
	return !strings.EqualFold(k, "CC") && !strings.EqualFold(k, "BCC")
}

// publishing returns the AMQP message that carries m: persistent, with the
// ID as message-id (or a header when longer than AMQP allows), the
// publication time in nanoseconds, and the headers.
func publishing(m *broker.Message, now time.Time) amqp.Publishing {
	h := make(amqp.Table, len(m.Header)+2)
	var esc []byte
	for k, v := range m.Header {
		if k == broker.HeaderID || k == broker.HeaderPublishedAt {
			continue
		}
		if safeName(k) {
			h[k] = v
			continue
		}
		esc = appendPair(esc, k, v)
	}
	if esc != nil {
		h[headerEscaped] = esc
	}
	p := amqp.Publishing{
		Headers:      h,
		DeliveryMode: amqp.Persistent,
		Timestamp:    now,
		Body:         m.Body,
	}
	if len(m.ID) <= 255 {
		p.MessageId = m.ID
	} else {
		h[broker.HeaderID] = m.ID
	}
	h[broker.HeaderPublishedAt] = now.UnixNano()
	return p
}

// message returns the broker message carried by d, and the attempt it is:
// the one Herald wrote on a redelivered copy, plus the server's redeliveries
// of this copy (quorum queues count them in x-delivery-count; classic queues
// only say whether it was redelivered).
func message(d *amqp.Delivery) *broker.Message {
	m := &broker.Message{ID: d.MessageId, Topic: d.RoutingKey, Body: d.Body, Attempt: 1}
	if m.Body == nil {
		m.Body = []byte{}
	}
	redelivered := 0
	if d.Redelivered {
		redelivered = 1
	}
	for k, v := range d.Headers {
		switch {
		case k == headerEscaped:
			b, _ := v.([]byte)
			if s, ok := v.(string); ok {
				b = []byte(s)
			}
			for len(b) > 0 {
				name, value, rest, ok := nextPair(b)
				if !ok {
					break
				}
				if m.Header == nil {
					m.Header = broker.Header{}
				}
				m.Header[name] = value
				b = rest
			}
		case k == headerAttempt:
			if n := toInt(v); n > 0 {
				m.Attempt = n
			}
		case k == headerTopic:
			m.Topic = fmt.Sprint(v)
		case k == broker.HeaderID:
			m.ID = fmt.Sprint(v)
		case k == broker.HeaderPublishedAt:
			if n := toInt(v); n > 0 {
				m.PublishedAt = time.Unix(0, int64(n))
			}
		case k == headerDeliveryCount:
			redelivered = max(redelivered, toInt(v))
		case strings.HasPrefix(k, "x-"):
			// The server's (x-death, x-first-death-queue…), not the
			// publisher's: the publisher's are escaped.
		default:
			if m.Header == nil {
				m.Header = make(broker.Header, len(d.Headers))
			}
			switch s := v.(type) {
			case string:
				m.Header[k] = s
			case []byte:
				m.Header[k] = string(s)
			default:
				m.Header[k] = fmt.Sprint(v) // from a publisher other than Herald
			}
		}
	}
	m.Attempt += redelivered
	if m.PublishedAt.IsZero() {
		m.PublishedAt = d.Timestamp
	}
	return m
}

func toInt(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int8:
		return int(n)
	case int16:
		return int(n)
	case int32:
		return int(n)
	case int64:
		return int(n)
	case uint8:
		return int(n)
	case uint16:
		return int(n)
	case uint32:
		return int(n)
	case uint64:
		return int(n)
	}
	return 0
}

// appendPair appends a header pair as two uvarint-length-prefixed strings.
func appendPair(b []byte, k, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(k)))
	b = append(b, k...)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func nextPair(b []byte) (k, v string, rest []byte, ok bool) {
	n, i := binary.Uvarint(b)
	if i <= 0 || n > uint64(len(b)-i) {
		return "", "", nil, false
	}
	k, b = string(b[i:i+int(n)]), b[i+int(n):]
	n, i = binary.Uvarint(b)
	if i <= 0 || n > uint64(len(b)-i) {
		return "", "", nil, false
	}
	return k, string(b[i : i+int(n)]), b[i+int(n):], true
}
