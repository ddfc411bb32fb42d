package httpbroker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/herald-dev/herald/broker"
)

// The delivery request body ("batch") is:
//
//	"HRB1"                         magic and version
//	uvarint len, topic
//	uvarint count                  1 to maxBatchMessages
//	count times:
//	  uvarint attempt              1-based
//	  stored message (below)
//
// and a stored message, as the spool keeps it, is:
//
//	uvarint len, id
//	varint  published at           Unix nanoseconds
//	uvarint header count
//	  uvarint len, name, uvarint len, value   (names sorted)
//	uvarint len, body
//
// The sender copies stored messages from the spool into a batch without
// decoding them; only the subscriber decodes, with [decodeBatch], which
// checks every length against what is left and never trusts a count to size
// an allocation.
const batchMagic = "HRB1"

// Limits of the delivery format, enforced by the decoder.
const (
	maxBatchMessages = 4096
	maxHeaders       = 1024
	maxIDLength      = 1024
	maxAttempt       = 1 << 30
)

var errMalformed = errors.New("malformed batch")

// appendStored appends the stored form of a message.
func appendStored(buf []byte, id string, publishedAt time.Time, h broker.Header, body []byte) []byte {
	buf = appendString(buf, id)
	buf = binary.AppendVarint(buf, publishedAt.UnixNano())
	buf = binary.AppendUvarint(buf, uint64(len(h)))
	for _, k := range slices.Sorted(maps.Keys(h)) {
		buf = appendString(buf, k)
		buf = appendString(buf, h[k])
	}
	buf = binary.AppendUvarint(buf, uint64(len(body)))
	return append(buf, body...)
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// appendBatchHeader starts a batch of count messages of topic.
func appendBatchHeader(buf []byte, topic string, count int) []byte {
	buf = append(buf, batchMagic...)
	buf = appendString(buf, topic)
	return binary.AppendUvarint(buf, uint64(count))
}

// appendBatchEntry appends one message of a batch: its attempt and its
// stored form.
func appendBatchEntry(buf []byte, attempt int, stored []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(attempt))
	return append(buf, stored...)
}

// decoder reads the fields of the delivery format from data, failing on the
// first thing that does not fit.
type decoder struct {
	data []byte
	err  error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.data)
	if n <= 0 {
		d.fail("bad %s", what)
		return 0
	}
	d.data = d.data[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.data)
	if n <= 0 {
		d.fail("bad %s", what)
		return 0
	}
	d.data = d.data[n:]
	return v
}

// bytes returns the next length-prefixed field, at most max bytes long,
// sharing data's memory.
func (d *decoder) bytes(what string, max int) []byte {
	n := d.uvarint(what + " length")
	if d.err != nil {
		return nil
	}
	if n > uint64(max) || n > uint64(len(d.data)) {
		d.fail("%s of %d bytes (limit %d, %d left)", what, n, max, len(d.data))
		return nil
	}
	b := d.data[:n:n]
	d.data = d.data[n:]
	return b
}

// decodeBatch decodes a delivery request body. The messages' bodies share
// data's memory; topics, IDs and headers are copied into strings. It checks
// the format only: the topic is checked against the subscription by the
// caller.
func decodeBatch(data []byte, maxMessage int) (topic string, msgs []*broker.Message, err error) {
	if len(data) < len(batchMagic) || string(data[:len(batchMagic)]) != batchMagic {
		return "", nil, fmt.Errorf("%w: not a Herald batch (bad magic)", errMalformed)
	}
	d := &decoder{data: data[len(batchMagic):]}
	topic = string(d.bytes("topic", broker.MaxTopicLength))
	count := d.uvarint("message count")
	if d.err == nil && (count == 0 || count > maxBatchMessages) {
		d.fail("%d messages in a batch (want 1 to %d)", count, maxBatchMessages)
	}
	if d.err != nil {
		return "", nil, d.err
	}
	// Each message takes at least 6 bytes, so a count the data cannot hold
	// is refused before anything is allocated for it.
	if count > uint64(len(d.data)/6) {
		return "", nil, fmt.Errorf("%w: %d messages cannot fit in %d bytes", errMalformed, count, len(d.data))
	}
	msgs = make([]*broker.Message, 0, count)
	for i := uint64(0); i < count && d.err == nil; i++ {
		m := d.message(maxMessage)
		if d.err != nil {
			break
		}
		m.Topic = topic
		msgs = append(msgs, m)
	}
	if d.err == nil && len(d.data) != 0 {
		d.fail("%d bytes after the last message", len(d.data))
	}
	if d.err != nil {
		return "", nil, d.err
	}
	return topic, msgs, nil
}

func (d *decoder) message(maxMessage int) *broker.Message {
	m := &broker.Message{}
	attempt := d.uvarint("attempt")
	if d.err == nil && (attempt == 0 || attempt > maxAttempt) {
		d.fail("attempt %d", attempt)
	}
	m.Attempt = int(attempt)
	start := len(d.data)
	id := d.bytes("id", maxIDLength)
	if d.err == nil && len(id) == 0 {
		d.fail("empty message id")
	}
	m.ID = string(id)
	m.PublishedAt = time.Unix(0, d.varint("published at"))
	nh := d.uvarint("header count")
	if d.err == nil && nh > maxHeaders {
		d.fail("%d headers (limit %d)", nh, maxHeaders)
	}
	if d.err != nil {
		return nil
	}
	if nh > 0 {
		m.Header = make(broker.Header, min(nh, uint64(len(d.data)/2)))
		for range nh {
			k := d.bytes("header name", maxMessage)
			v := d.bytes("header value", maxMessage)
			if d.err != nil {
				return nil
			}
			if _, dup := m.Header[string(k)]; dup {
				d.fail("header %q twice", k)
				return nil
			}
			m.Header[string(k)] = string(v)
		}
	}
	m.Body = d.bytes("body", maxMessage)
	if d.err == nil && start-len(d.data) > maxMessage {
		d.fail("message of %d bytes (limit %d)", start-len(d.data), maxMessage)
	}
	if d.err != nil {
		return nil
	}
	if len(m.Body) == 0 {
		m.Body = nil
	}
	return m
}

// The response to a delivery streams one result per message, in the order
// the handlers finish, as frames:
//
//	'R' uvarint index, byte status, uvarint delay in milliseconds
//	'K'                            keep-alive: handlers are still running
//	'C' 32 bytes                   checkpoint: HMAC of every R frame so far
//
// The publisher applies the results only up to the last checkpoint it could
// verify, so an answer cannot be forged or altered without the secret.
const (
	frameResult     = 'R'
	frameKeepAlive  = 'K'
	frameCheckpoint = 'C'
)

// status is what became of one message of a delivery.
type status byte

const (
	// statusAck: handled (or dead-lettered); remove it from the spool.
	statusAck status = iota
	// statusRetry: the handler failed; deliver again after the delay, as
	// the next attempt.
	statusRetry
	// statusNotRun: the subscription stopped before the handler started;
	// deliver again at once, elsewhere if possible, as the same attempt.
	statusNotRun
	// statusAbandoned: the handler started but its subscription gave up
	// waiting for it; deliver again at once as the next attempt.
	statusAbandoned
	statusMax
)

func appendResult(buf []byte, index int, s status, delay time.Duration) []byte {
	buf = append(buf, frameResult)
	buf = binary.AppendUvarint(buf, uint64(index))
	buf = append(buf, byte(s))
	return binary.AppendUvarint(buf, uint64(max(delay, 0)/time.Millisecond))
}
