package gcppubsub

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/herald-dev/herald/broker"
)

// maxID is Pub/Sub's limit on a topic or subscription ID.
const maxID = 255

// validID reports whether id is a valid Pub/Sub topic or subscription ID:
// 3 to 255 characters among letters, digits and "-_.~+%", starting with a
// letter and not with "goog".
func validID(id string) bool {
	if len(id) < 3 || len(id) > maxID || strings.HasPrefix(strings.ToLower(id), "goog") {
		return false
	}
	c := id[0]
	if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~+%", c) >= 0) {
			return false
		}
	}
	return true
}

// topicID returns the Pub/Sub topic ID of a Herald topic: the prefix and the
// topic. Herald topics are at most 200 bytes of Pub/Sub's own characters, so
// with a valid prefix the mapping is one-to-one.
func (b *Broker) topicID(topic string) (string, error) {
	id := b.cfg.prefix + topic
	if len(id) > maxID || !validID(id) {
		return "", fmt.Errorf("%w: %q is not a valid Pub/Sub topic ID (set a prefix, see WithPrefix)", broker.ErrBadTopic, id)
	}
	return id, nil
}

// groupSubscriptionID returns the subscription of queue group q on topic:
// "<prefix><topic>~<q>". '~' is in neither a topic nor a queue name.
func (b *Broker) groupSubscriptionID(topic, q string) string {
	return fit(b.cfg.prefix + topic + "~" + q)
}

// broadcastSubscriptionID returns a new subscription ID for a broadcast
// subscriber: "<prefix><topic>~~<random>", which no queue group has.
func (b *Broker) broadcastSubscriptionID(topic string) string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return fit(b.cfg.prefix + topic + "~~" + hex.EncodeToString(r[:]))
}

// fit cuts an ID longer than Pub/Sub allows, ending it with a hash of the
// whole so that distinct IDs stay distinct.
func fit(id string) string {
	if len(id) <= maxID {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	h := hex.EncodeToString(sum[:8])
	return id[:maxID-len(h)-1] + "-" + h
}
