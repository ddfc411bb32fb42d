package broker

import "fmt"

// Limits on names, chosen so every backend can map them to its own.
const (
	MaxTopicLength = 200
	MaxQueueLength = 64
)

// ValidateTopic returns nil when topic is a valid topic name: one or more
// tokens separated by single dots, each token made of ASCII letters, digits,
// '-' and '_', at most [MaxTopicLength] bytes in all. The error wraps
// [ErrBadTopic] and says what is wrong.
func ValidateTopic(topic string) error {
	if topic == "" {
		return fmt.Errorf("%w: empty topic", ErrBadTopic)
	}
	if len(topic) > MaxTopicLength {
		return fmt.Errorf("%w: topic is %d bytes, more than %d", ErrBadTopic, len(topic), MaxTopicLength)
	}
	start := 0
	for i := 0; i <= len(topic); i++ {
		if i == len(topic) || topic[i] == '.' {
			if i == start {
				return fmt.Errorf("%w: %q has an empty token at byte %d", ErrBadTopic, topic, i)
			}
			start = i + 1
			continue
		}
		if !tokenByte(topic[i]) {
			return fmt.Errorf("%w: %q has %q at byte %d (allowed: letters, digits, '-', '_', '.')", ErrBadTopic, topic, topic[i], i)
		}
	}
	return nil
}

// ValidateQueue returns nil when name is a valid queue group name: one token
// (see [ValidateTopic]) of at most [MaxQueueLength] bytes.
func ValidateQueue(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty queue group name", ErrBadTopic)
	}
	if len(name) > MaxQueueLength {
		return fmt.Errorf("%w: queue group name is %d bytes, more than %d", ErrBadTopic, len(name), MaxQueueLength)
	}
	for i := 0; i < len(name); i++ {
		if !tokenByte(name[i]) {
			return fmt.Errorf("%w: queue group %q has %q at byte %d (allowed: letters, digits, '-', '_')", ErrBadTopic, name, name[i], i)
		}
	}
	return nil
}

func tokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
