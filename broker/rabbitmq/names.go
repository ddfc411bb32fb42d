package rabbitmq

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// DefaultExchange is the topic exchange Herald publishes to, and the prefix
// of the queues it declares (see [WithExchange]).
const DefaultExchange = "herald"

// DeadLetterGroup is the queue group whose queue keeps a dead-letter topic's
// messages while nobody consumes them. A topic exchange drops what no queue
// is bound to, so every subscription declares, beside its own queue, the
// durable queue of group DeadLetterGroup on its dead-letter topic, and dead
// letters wait there. Subscribe to the dead-letter topic with
// broker.Queue(DeadLetterGroup) to read them, those published before
// included.
const DeadLetterGroup = "dlq"

// maxQueueName is the longest queue name AMQP 0-9-1 carries (a short string).
const maxQueueName = 255

// groupQueue returns the queue of queue group group on topic:
// exchange + ":" + topic + ":" + group ("herald:user.registered:email").
// ':' appears in neither topics nor group names, so names never clash.
func groupQueue(exchange, topic, group string) string {
	return queueName(exchange + ":" + topic + ":" + group)
}

// broadcastQueue returns the queue of a broadcast subscriber with the random
// id: exchange + ":" + topic + ":~" + id. '~' appears in no group name.
func broadcastQueue(exchange, topic, id string) string {
	return queueName(exchange + ":" + topic + ":~" + id)
}

// retryQueue returns the queue where the redeliveries of the queue named
// base wait for delay: base + ":retry-<ms>ms". Its messages expire after
// delay and go back to base (dead-lettering through the default exchange).
func retryQueue(base string, delay time.Duration) string {
	return queueName(base + ":retry-" + strconv.FormatInt(delay.Milliseconds(), 10) + "ms")
}

// queueName returns name, or, when it is longer than AMQP allows, its start
// followed by "~" and 16 hex digits of its SHA-256, so long names stay
// unique and readable.
func queueName(name string) string {
	if len(name) <= maxQueueName {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:maxQueueName-17] + "~" + hex.EncodeToString(sum[:8])
}

// retryBuckets returns the delays of the retry queues. A redelivery waits in the
// queue of the smallest bucket not shorter than its backoff (the longest
// for longer ones): every message of a queue has the same time to live, so
// they expire in order, from the head, on time. The steps are at most 2.5×.
func retryBuckets() []time.Duration {
	return []time.Duration{
		10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
		250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
		5 * time.Second, 10 * time.Second, 25 * time.Second, time.Minute, 2 * time.Minute,
		5 * time.Minute, 10 * time.Minute, 25 * time.Minute, time.Hour, 2 * time.Hour,
		5 * time.Hour, 12 * time.Hour, 24 * time.Hour,
	}
}

// bucket returns the retry bucket of a backoff of d.
func bucket(d time.Duration) time.Duration {
	bs := retryBuckets()
	for _, b := range bs {
		if d <= b {
			return b
		}
	}
	return bs[len(bs)-1]
}
