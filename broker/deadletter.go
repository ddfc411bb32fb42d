package broker

import (
	"maps"
	"strconv"
	"time"
)

// Header names a dead letter carries beside the original message's headers.
const (
	// HeaderDeadLetterReason is the error that sent the message to the
	// dead-letter topic, cut to [MaxDeadLetterReason] bytes.
	HeaderDeadLetterReason = "herald-dlq-reason"
	// HeaderDeadLetterAttempts is how many deliveries were made.
	HeaderDeadLetterAttempts = "herald-dlq-attempts"
	// HeaderDeadLetterTopic is the topic the message was published to.
	HeaderDeadLetterTopic = "herald-dlq-topic"
	// HeaderDeadLetterQueue is the queue group that gave up ("" for a
	// broadcast subscriber).
	HeaderDeadLetterQueue = "herald-dlq-queue"
	// HeaderDeadLetterTime is when the message was dead-lettered (RFC 3339).
	HeaderDeadLetterTime = "herald-dlq-time"
	// HeaderReplayedAt marks a message replayed from a dead-letter topic
	// (RFC 3339). It keeps its ID, so consumers that already handled it
	// deduplicate it; backends whose engine drops a re-published ID within a
	// window (JetStream's Nats-Msg-Id) must not let it swallow a replay,
	// nor a second dead letter of the same message (one with another
	// HeaderDeadLetterTime, from another group).
	HeaderReplayedAt = "herald-replayed-at"
)

// MaxDeadLetterReason bounds the reason kept in a dead letter.
const MaxDeadLetterReason = 4096

// DefaultDeadLetterTopic is the dead-letter topic of topic when a
// subscription sets none: topic + ".dlq".
func DefaultDeadLetterTopic(topic string) string { return topic + ".dlq" }

// NewDeadLetter returns the message to publish to the dead-letter topic for
// m, which failed under the subscription o with reason: m's ID, headers and
// body, plus the Header* dead-letter headers.
func NewDeadLetter(m *Message, o *SubscribeOptions, reason error) *Message {
	h := maps.Clone(m.Header)
	if h == nil {
		h = Header{}
	}
	why := "unknown"
	if reason != nil {
		why = reason.Error()
	}
	if len(why) > MaxDeadLetterReason {
		why = why[:MaxDeadLetterReason]
	}
	h[HeaderDeadLetterReason] = why
	h[HeaderDeadLetterAttempts] = strconv.Itoa(m.Attempt)
	h[HeaderDeadLetterTopic] = m.Topic
	h[HeaderDeadLetterQueue] = o.Queue
	h[HeaderDeadLetterTime] = time.Now().UTC().Format(time.RFC3339Nano)
	return &Message{ID: m.ID, Header: h, Body: m.Body}
}

// ReplayOf returns the message to publish to replay the dead letter d on its
// original topic: the original ID, headers and body, without the dead-letter
// headers, marked with [HeaderReplayedAt]. The topic is d.Header[HeaderDeadLetterTopic].
func ReplayOf(d *Message) (topic string, m *Message) {
	h := maps.Clone(d.Header)
	for _, k := range []string{HeaderDeadLetterReason, HeaderDeadLetterAttempts, HeaderDeadLetterTopic, HeaderDeadLetterQueue, HeaderDeadLetterTime} {
		delete(h, k)
	}
	if h == nil {
		h = Header{}
	}
	h[HeaderReplayedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	return d.Header.Get(HeaderDeadLetterTopic), &Message{ID: d.ID, Header: h, Body: d.Body}
}
