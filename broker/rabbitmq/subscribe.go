package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herald-dev/herald/broker"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Subscribe declares the subscription's queue, binds it to topic on the
// broker's exchange and starts consuming it.
//
// With [broker.Queue] the queue is the group's durable queue (quorum by
// default, see [WithQueueType]), shared by every member: it keeps the
// group's messages while no member is live. Without, it is an exclusive,
// auto-deleted queue of the subscription's own, which lives as long as the
// subscription and its connection. Each subscription also declares the
// durable queue of [DeadLetterGroup] on its dead-letter topic, so that dead
// letters are kept even when nobody consumes them yet.
//
// ctx bounds the set-up only. The error wraps [broker.ErrClosed] after
// Close.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	o, err := broker.NewSubscribeOptions(topic, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: subscribe %q: %w", topic, err)
	}
	if b.isClosed() {
		return nil, fmt.Errorf("rabbitmq: subscribe %q: %w", topic, broker.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("rabbitmq: subscribe %q: %w", topic, err)
	}
	s := newSubscription(b, h, o)
	sess, err := s.open(ctx)
	if err != nil {
		if errors.Is(err, errClosing) {
			err = fmt.Errorf("%w: %w", broker.ErrClosed, err)
		}
		return nil, fmt.Errorf("rabbitmq: subscribe %q: %w", topic, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = sess.ch.Close()
		return nil, fmt.Errorf("rabbitmq: subscribe %q: %w", topic, broker.ErrClosed)
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	s.start(sess)
	return s, nil
}

func (b *Broker) forget(s *subscription) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// queueArgs returns the arguments of a queue group's durable queues.
func (b *Broker) queueArgs() amqp.Table {
	t := amqp.Table{amqp.QueueTypeArg: string(b.cfg.queueType)}
	if b.cfg.queueExpiry > 0 {
		t[amqp.QueueTTLArg] = b.cfg.queueExpiry.Milliseconds()
	}
	return t
}

// queueSpec is a queue to declare.
type queueSpec struct {
	name       string
	durable    bool
	exclusive  bool
	autoDelete bool
	args       amqp.Table
	bindKey    string // bind to the exchange with this routing key ("" for none)
}

// declare declares the queues on conn, each on a channel of its own: a
// queue that exists with other arguments (declared by another version, or
// with another queue type) closes the channel with PRECONDITION_FAILED, and
// is then used as it is, with a warning.
func (b *Broker) declare(conn *amqp.Connection, log func(msg string, args ...any), qs ...queueSpec) error {
	for _, q := range qs {
		ch, err := conn.Channel()
		if err != nil {
			return err
		}
		_, err = ch.QueueDeclare(q.name, q.durable, q.autoDelete, q.exclusive, false, q.args)
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed {
			log("rabbitmq: queue exists with other arguments; using it as it is", "queue", q.name, "err", err)
			ch, err = conn.Channel()
			if err != nil {
				return err
			}
			_, err = ch.QueueDeclarePassive(q.name, q.durable, q.autoDelete, q.exclusive, false, nil)
		}
		if err == nil && q.bindKey != "" {
			err = ch.QueueBind(q.name, q.bindKey, b.cfg.exchange, false, nil)
		}
		_ = ch.Close()
		if err != nil {
			return fmt.Errorf("declare queue %q: %w", q.name, err)
		}
	}
	return nil
}

// mainQueues returns the subscription's queue and its dead-letter topic's
// queue.
func (s *subscription) mainQueues() []queueSpec {
	b := s.b
	var main queueSpec
	if s.broadcast {
		main = queueSpec{name: s.queue, exclusive: true, autoDelete: true,
			args: amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeClassic}, bindKey: s.opts.Topic}
	} else {
		main = b.groupSpec(s.opts.Topic, s.opts.Queue)
	}
	return []queueSpec{main, b.groupSpec(s.opts.DeadLetterTopic, DeadLetterGroup)}
}

// groupSpec returns the durable queue of queue group group on topic, bound
// to topic: what Subscribe and [Broker.DeclareGroup] declare, with the same
// arguments, so that neither finds the other's queue inequivalent.
func (b *Broker) groupSpec(topic, group string) queueSpec {
	return queueSpec{name: groupQueue(b.cfg.exchange, topic, group), durable: true, args: b.queueArgs(), bindKey: topic}
}

// retrySpec returns the retry queue where the subscription's redeliveries
// wait for delay (a bucket): messages expire after delay and go back to the
// subscription's queue through the default exchange.
//
// Retry queues are classic queues whatever the type of the queue they feed:
// a quorum queue with a message TTL and at-least-once dead-lettering can
// keep expired messages for good when nothing consumes it
// (rabbitmq-server#10718), and nothing consumes a retry queue. A classic
// queue expires its messages on a timer and dead-letters them at once (at
// most once: the server moves them without confirms, which loses one only
// if the target queue is unavailable at that moment).
func (s *subscription) retrySpec(delay time.Duration) queueSpec {
	b := s.b
	args := amqp.Table{
		amqp.QueueTypeArg:           amqp.QueueTypeClassic,
		amqp.QueueMessageTTLArg:     delay.Milliseconds(),
		"x-dead-letter-exchange":    "",
		"x-dead-letter-routing-key": s.queue,
	}
	name := retryQueue(s.queue, delay)
	if s.broadcast {
		return queueSpec{name: name, exclusive: true, args: args}
	}
	if b.cfg.queueExpiry > 0 {
		// Nothing consumes a retry queue: it must outlive its messages.
		args[amqp.QueueTTLArg] = (max(b.cfg.queueExpiry, 2*delay) + time.Minute).Milliseconds()
	}
	return queueSpec{name: name, durable: true, args: args}
}
