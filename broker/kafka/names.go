package kafka

import (
	"crypto/sha256"
	"encoding/hex"
)

// maxTopicName is Kafka's limit on a topic name.
const maxTopicName = 249

// retryPrefix starts the name of every retry topic. Herald topics that start
// with it are reserved for the backend.
const retryPrefix = "herald-retry."

// groupID returns the Kafka consumer group of queue group q on topic: Herald
// queue groups belong to one topic, Kafka's to the cluster, so two topics'
// "email" groups must not be one Kafka group. '~' is in neither a topic nor
// a queue name, so the mapping is one-to-one.
func groupID(topic, q string) string { return q + "~" + topic }

// retryTopic returns the topic that holds the redeliveries of queue group q
// on topic: "herald-retry.<q>.<topic>", shortened with a hash when it would
// pass Kafka's 249 bytes.
func retryTopic(topic, q string) string {
	return fit(retryPrefix + q + "." + topic)
}

// fit returns name, or when it is longer than Kafka allows, its start and a
// hash of the whole, so that distinct names stay distinct.
func fit(name string) string {
	if len(name) <= maxTopicName {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:8])
	return name[:maxTopicName-len(h)-1] + "-" + h
}
