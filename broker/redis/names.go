package redis

// DefaultPrefix namespaces Herald's keys on a Redis server shared with other
// programs (see [WithPrefix]).
const DefaultPrefix = "herald"

// streamKey returns the stream of topic: prefix + ":{" + topic + "}", so
// "user.registered" is stream "herald:{user.registered}". The braces are a
// Redis Cluster hash tag: the topic's stream and the retry keys of its groups
// hash to the same slot, so the scripts that move entries between them are
// valid on a cluster too.
func streamKey(prefix, topic string) string { return prefix + ":{" + topic + "}" }

// delayKey returns the sorted set that holds the messages of group waiting
// for their redelivery time (score: milliseconds since the epoch, server
// clock).
func delayKey(prefix, topic, group string) string {
	return streamKey(prefix, topic) + ":" + group + ":delay"
}

// redoKey returns the stream of group's redeliveries: messages whose backoff
// has passed, and messages given back by a member that left. Only group
// reads it, under the same group name, so nothing in it reaches the other
// groups of the topic.
func redoKey(prefix, topic, group string) string {
	return streamKey(prefix, topic) + ":" + group + ":redo"
}

// broadcastGroupPrefix starts the consumer group names of broadcast
// subscribers. Queue group names cannot contain '~', so they never clash.
const broadcastGroupPrefix = "~"
