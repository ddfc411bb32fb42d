package broker

import "context"

// DeadLetterBrowser is implemented by backends that keep the messages of a
// dead-letter topic where they can be read without consuming them (a
// JetStream stream, the in-process bus). It is an optional capability, found
// by type assertion; `herald dlq` and the console use it to list, replay and
// purge dead letters.
//
// Browsing is not consuming: a subscription to the dead-letter topic, if
// there is one, still gets every message, and a browsed message stays until
// it is deleted (or until the backend's own retention drops it).
//
// Implementations are safe for concurrent use.
type DeadLetterBrowser interface {
	// DeadLetters returns up to limit messages of the dead-letter topic
	// topic (e.g. "user.registered.dlq", see [DefaultDeadLetterTopic]),
	// oldest first. Each has the ID, Header and Body it was published with
	// (the Header* dead-letter headers of [NewDeadLetter] included), Topic
	// set to topic, PublishedAt set to when the backend stored it, and
	// Attempt 0. A limit <= 0 means no limit. A topic that has no dead
	// letters, or that the backend never saw, gives an empty slice and no
	// error. The topic is validated as by [ValidateTopic] (an error wrapping
	// [ErrBadTopic]).
	//
	// Two dead letters may share an ID: two queue groups can each give up on
	// the same message, and a replayed message can fail again.
	DeadLetters(ctx context.Context, topic string, limit int) ([]*Message, error)

	// DeleteDeadLetters removes from the dead-letter topic topic every
	// message whose ID is in ids (all of the messages sharing an ID) and
	// returns how many it removed. IDs not found are not an error. To
	// replay a dead letter without losing it, publish [ReplayOf] it first
	// and delete it after: a crash in between only duplicates it, and
	// consumers deduplicate by ID.
	DeleteDeadLetters(ctx context.Context, topic string, ids []string) (int, error)
}
