package nats

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-dev/herald/broker"
)

var _ broker.DeadLetterBrowser = (*Broker)(nil)

// DeadLetters reads up to limit (all when limit <= 0) messages of the
// dead-letter topic topic from its stream, oldest first, with direct gets
// by subject: nothing is consumed and no consumer is made. A topic whose
// stream does not exist has no dead letters. The stream keeps what the
// broker's retention ([WithMaxAge]) keeps, whether or not the topic is
// subscribed. It implements [broker.DeadLetterBrowser].
func (b *Broker) DeadLetters(ctx context.Context, topic string, limit int) ([]*broker.Message, error) {
	var out []*broker.Message
	err := b.scanDeadLetters(ctx, topic, func(raw *jetstream.RawStreamMsg, m *broker.Message) bool {
		out = append(out, m)
		return limit <= 0 || len(out) < limit
	})
	if err != nil {
		return nil, fmt.Errorf("nats: dead letters %q: %w", topic, err)
	}
	if out == nil {
		out = []*broker.Message{}
	}
	return out, nil
}

// DeleteDeadLetters deletes from the stream of topic every message whose ID
// is in ids, by stream sequence, and returns how many it deleted. It reads
// the whole stream to find them. It implements [broker.DeadLetterBrowser].
func (b *Broker) DeleteDeadLetters(ctx context.Context, topic string, ids []string) (int, error) {
	var seqs []uint64
	err := b.scanDeadLetters(ctx, topic, func(raw *jetstream.RawStreamMsg, m *broker.Message) bool {
		if slices.Contains(ids, m.ID) {
			seqs = append(seqs, raw.Sequence)
		}
		return true
	})
	if err != nil || len(seqs) == 0 {
		if err != nil {
			err = fmt.Errorf("nats: delete dead letters %q: %w", topic, err)
		}
		return 0, err
	}
	s, err := b.js.Stream(ctx, streamName(b.cfg.prefix, topic))
	if err != nil {
		return 0, fmt.Errorf("nats: delete dead letters %q: %w", topic, err)
	}
	n := 0
	for _, seq := range seqs {
		err := s.DeleteMsg(ctx, seq)
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) && !errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
			return n, fmt.Errorf("nats: delete dead letters %q: sequence %d: %w", topic, seq, err)
		}
		if err == nil {
			n++
		}
	}
	return n, nil
}

// scanDeadLetters calls f with each message of topic's stream, oldest first,
// until f returns false. A missing stream is an empty one.
func (b *Broker) scanDeadLetters(ctx context.Context, topic string, f func(*jetstream.RawStreamMsg, *broker.Message) bool) error {
	if err := broker.ValidateTopic(topic); err != nil {
		return err
	}
	if b.isClosed() {
		return broker.ErrClosed
	}
	s, err := b.js.Stream(ctx, streamName(b.cfg.prefix, topic))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	subj := subject(b.cfg.prefix, topic)
	for seq := uint64(1); ; {
		raw, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		id, h := decodeHeader(raw.Header)
		m := &broker.Message{ID: id, Header: h, Body: raw.Data, Topic: topic, PublishedAt: raw.Time}
		if !f(raw, m) {
			return nil
		}
		seq = raw.Sequence + 1
	}
}
