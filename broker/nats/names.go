package nats

import "strings"

// DefaultPrefix namespaces Herald's subjects and streams on a NATS server
// shared with other programs (see [WithPrefix]).
const DefaultPrefix = "herald"

// subject returns the NATS subject of topic: prefix + "." + topic, so
// "user.registered" is published on "herald.user.registered".
func subject(prefix, topic string) string { return prefix + "." + topic }

// streamName returns the JetStream stream that holds topic: prefix, then
// "~", then the topic with its dots replaced by "~" ("user.registered" is
// stream "herald~user~registered"). Stream names cannot contain dots; "~"
// can appear in neither a topic nor a prefix, so the mapping is one-to-one
// and readable in `nats stream ls`.
func streamName(prefix, topic string) string {
	return prefix + "~" + strings.ReplaceAll(topic, ".", "~")
}
