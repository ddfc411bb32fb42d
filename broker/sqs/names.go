package sqs

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Name limits of SNS topics and SQS queues.
const (
	maxTopicName = 256
	maxQueueName = 80
	// dlqSuffix ends the name of a queue's redrive dead-letter queue.
	dlqSuffix = "-dlq"
)

// validName reports whether every byte of s is allowed in an SNS topic or
// SQS queue name: letters, digits, '-' and '_'.
func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// hash8 is 8 hex digits of the SHA-256 of s.
func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// readable is topic with its dots, which SNS and SQS names cannot hold, as
// '_'. It is not one-to-one ("a.b" and "a_b" read the same); the hash that
// follows it in every name is.
func readable(topic string) string { return strings.ReplaceAll(topic, ".", "_") }

// topicName returns the SNS topic of a Herald topic:
// "<prefix><topic with '.' as '_'>-<hash of the topic>".
func (b *Broker) topicName(topic string) string {
	return b.cfg.prefix + readable(topic) + "-" + hash8(topic)
}

// groupQueueName returns the SQS queue of queue group q on topic:
// "<prefix><topic>-<q>-<hash of both>", the readable part cut so the name
// fits SQS's 80 characters with room for a redrive queue's "-dlq".
func (b *Broker) groupQueueName(topic, q string) string {
	return b.queueName(readable(topic)+"-"+q, hash8(topic+"~"+q))
}

// broadcastQueueName returns a new queue name for a broadcast subscriber:
// "<prefix><topic>-b-<random>".
func (b *Broker) broadcastQueueName(topic string) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return b.queueName(readable(topic)+"-b", hex.EncodeToString(r[:]))
}

func (b *Broker) queueName(readable, unique string) string {
	room := maxQueueName - len(dlqSuffix) - len(b.cfg.prefix) - len(unique) - 1
	if len(readable) > room {
		readable = readable[:room]
	}
	return b.cfg.prefix + readable + "-" + unique
}
