package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/herald-dev/herald/broker"
	amqp "github.com/rabbitmq/amqp091-go"
)

var _ broker.DeadLetterBrowser = (*Broker)(nil)

// DeadLetters returns up to limit (all when limit <= 0) of the dead letters
// waiting in the [DeadLetterGroup] queue of the dead-letter topic topic,
// oldest first (by the time they were published to it).
//
// RabbitMQ has no way to read a queue without taking its messages, so they
// are all taken (basic.get, not acknowledged) and given back by closing the
// channel; DeadLetters waits, two seconds at most, until they are ready
// again. A consumer of the DeadLetterGroup queue sees them redelivered (with
// their delivery counted, on quorum queues), maybe in another order.
// Subscriptions to the topic with queues of their own are not affected.
// Only the dead letters published after a subscription (or
// [Broker.DeclareGroup]) declared that queue are there. It implements
// [broker.DeadLetterBrowser].
func (b *Broker) DeadLetters(ctx context.Context, topic string, limit int) ([]*broker.Message, error) {
	out := []*broker.Message{}
	err := b.browse(ctx, topic, func(m *broker.Message) bool {
		out = append(out, m)
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: dead letters %q: %w", topic, err)
	}
	slices.SortStableFunc(out, func(a, b *broker.Message) int { return a.PublishedAt.Compare(b.PublishedAt) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// DeleteDeadLetters removes from the [DeadLetterGroup] queue of topic every
// message whose ID is in ids (it takes them all, acknowledges those, and
// gives the others back, see [Broker.DeadLetters]) and returns how many it
// removed. It implements [broker.DeadLetterBrowser].
func (b *Broker) DeleteDeadLetters(ctx context.Context, topic string, ids []string) (int, error) {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	n := 0
	err := b.browse(ctx, topic, func(m *broker.Message) bool {
		if want[m.ID] {
			n++
			return true
		}
		return false
	})
	if err != nil {
		return n, fmt.Errorf("rabbitmq: delete dead letters %q: %w", topic, err)
	}
	return n, nil
}

// browse takes every message ready in topic's DeadLetterGroup queue, calls
// fn with each, acknowledges (removes) those for which fn returns true, and
// gives the others back by closing the channel. The messages taken stay
// unacknowledged on the channel until then, so none is taken twice. A queue
// that does not exist has no messages.
func (b *Broker) browse(ctx context.Context, topic string, fn func(*broker.Message) (remove bool)) error {
	if err := broker.ValidateTopic(topic); err != nil {
		return err
	}
	if b.isClosed() {
		return broker.ErrClosed
	}
	conn, err := b.sub.get(ctx)
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	name := groupQueue(b.cfg.exchange, topic, DeadLetterGroup)
	_, err = ch.QueueDeclarePassive(name, true, false, false, false, nil)
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.NotFound {
		return nil // the error closed the channel
	}
	if err != nil {
		_ = ch.Close()
		return err
	}
	back := 0
	err = func() error {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			d, ok, err := ch.Get(name, false)
			if err != nil || !ok {
				return err
			}
			m := message(&d)
			m.Topic, m.Attempt = topic, 0
			if !fn(m) {
				back++
				continue
			}
			if err := d.Ack(false); err != nil {
				return err
			}
		}
	}()
	_ = ch.Close()
	if back > 0 {
		// Quorum queues take back what a closed channel held
		// asynchronously: wait until it is ready again, so that the next
		// look finds what this one saw.
		b.waitReady(conn, name, back)
	}
	return err
}

// waitReady polls queue until it has at least n messages ready, for two
// seconds at most (consumers may take them meanwhile).
func (b *Broker) waitReady(conn *amqp.Connection, queue string, n int) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		ch, err := conn.Channel()
		if err != nil {
			return
		}
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		_ = ch.Close()
		if err != nil || q.Messages >= n {
			return
		}
		<-time.After(10 * time.Millisecond)
	}
}
