package redis

import (
	"context"
	"fmt"

	"github.com/herald-dev/herald/broker"
)

var _ broker.DeadLetterBrowser = (*Broker)(nil)

// scanPage is how many entries one XRANGE reads.
const scanPage = 1000

// DeadLetters returns up to limit (all when limit <= 0) entries of the
// stream of the dead-letter topic topic, oldest first, read with XRANGE:
// reading them consumes nothing, and the stream keeps them until they are
// deleted (or trimmed, see [WithMaxLen]). It implements
// [broker.DeadLetterBrowser].
func (b *Broker) DeadLetters(ctx context.Context, topic string, limit int) ([]*broker.Message, error) {
	out := []*broker.Message{}
	err := b.scan(ctx, topic, func(id string, m *broker.Message) bool {
		out = append(out, m)
		return limit <= 0 || len(out) < limit
	})
	if err != nil {
		return nil, fmt.Errorf("redis: dead letters %q: %w", topic, err)
	}
	return out, nil
}

// DeleteDeadLetters deletes (XDEL) from the stream of topic every entry whose
// message ID is in ids and returns how many it deleted. It reads the whole
// stream to find them. It implements [broker.DeadLetterBrowser].
func (b *Broker) DeleteDeadLetters(ctx context.Context, topic string, ids []string) (int, error) {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	var entries []string
	err := b.scan(ctx, topic, func(id string, m *broker.Message) bool {
		if want[m.ID] {
			entries = append(entries, id)
		}
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("redis: delete dead letters %q: %w", topic, err)
	}
	n := 0
	key := streamKey(b.cfg.prefix, topic)
	for len(entries) > 0 {
		page := entries[:min(len(entries), scanPage)]
		entries = entries[len(page):]
		d, err := b.client.XDel(ctx, key, page...).Result()
		n += int(d)
		if err != nil {
			return n, fmt.Errorf("redis: delete dead letters %q: %w", topic, err)
		}
	}
	return n, nil
}

// scan calls fn with each entry of topic's stream, oldest first, until fn
// returns false. A stream that does not exist has no entries.
func (b *Broker) scan(ctx context.Context, topic string, fn func(entryID string, m *broker.Message) bool) error {
	if err := broker.ValidateTopic(topic); err != nil {
		return err
	}
	if b.isClosed() {
		return broker.ErrClosed
	}
	key := streamKey(b.cfg.prefix, topic)
	start := "-"
	for {
		page, err := b.client.XRangeN(ctx, key, start, "+", scanPage).Result()
		if err != nil {
			return err
		}
		for _, xm := range page {
			if !fn(xm.ID, decodeEntry(topic, xm.ID, xm.Values)) {
				return nil
			}
		}
		if len(page) < scanPage {
			return nil
		}
		start = "(" + page[len(page)-1].ID
	}
}
