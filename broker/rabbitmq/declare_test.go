package rabbitmq_test

import (
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/rabbitmq"
	"github.com/herald-dev/herald/internal/syncbuf"
	amqp "github.com/rabbitmq/amqp091-go"
)

// redeclare declares queue on b's connection with the arguments a queue
// group's queue of type qt has (x-queue-type, and x-expires as open sets
// it): the server answers PRECONDITION_FAILED when the queue exists with
// others.
func redeclare(t *testing.T, b *rabbitmq.Broker, queue string, qt rabbitmq.QueueType) error {
	t.Helper()
	var conn *amqp.Connection
	if !broker.As(b, &conn) {
		t.Fatal("As(**amqp.Connection) = false")
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	_, err = ch.QueueDeclare(queue, true, false, false, false, amqp.Table{
		amqp.QueueTypeArg: string(qt),
		amqp.QueueTTLArg:  testExpiry.Milliseconds(),
	})
	return err
}

// DeclareGroup declares the group's queue and the dead-letter topic's
// DeadLetterGroup queue with exactly the arguments Subscribe gives them, for
// each queue type: the group's later Subscribe declares them again without
// PRECONDITION_FAILED (it would log that it uses a queue "as it is"), and
// each keeps what is published before anyone consumes it.
func TestDeclareGroupSameQueuesAsSubscribe(t *testing.T) {
	for _, qt := range []rabbitmq.QueueType{rabbitmq.Quorum, rabbitmq.Classic} {
		t.Run(string(qt), func(t *testing.T) {
			ex := exchange()
			var logs syncbuf.Buffer
			b := open(t, rabbitmq.WithExchange(ex), rabbitmq.WithQueueType(qt), rabbitmq.WithLogger(logs.Logger()))
			const topic = "declare.args"
			dlt := broker.DefaultDeadLetterTopic(topic)
			if err := b.DeclareGroup(ctx(t), topic, "g"); err != nil {
				t.Fatalf("DeclareGroup: %v", err)
			}
			for _, q := range []string{ex + ":" + topic + ":g", ex + ":" + dlt + ":" + rabbitmq.DeadLetterGroup} {
				if err := redeclare(t, b, q, qt); err != nil {
					t.Errorf("declaring %s with the %s arguments: %v", q, qt, err)
				}
			}
			early := &broker.Message{Body: []byte("early")}
			publish(t, b, topic, early)
			dead := &broker.Message{Body: []byte("dead")}
			publish(t, b, dlt, dead)

			c, dc := newCollector(), newCollector()
			subscribe(t, b, topic, c.handler(nil), broker.Queue("g"), broker.WithLogger(logs.Logger()))
			subscribe(t, b, dlt, dc.handler(nil), broker.Queue(rabbitmq.DeadLetterGroup), broker.WithLogger(logs.Logger()))
			if got := c.wait(t, 1, 10*time.Second); got[0].ID != early.ID {
				t.Errorf("the group got %q, want the message published after the declaration", got[0].Body)
			}
			if got := dc.wait(t, 1, 10*time.Second); got[0].ID != dead.ID {
				t.Errorf("the dead-letter group got %q, want the message published after the declaration", got[0].Body)
			}
			if s := logs.String(); strings.Contains(s, "other arguments") {
				t.Errorf("Subscribe found the declared queues with other arguments:\n%s", s)
			}
		})
	}
}

// DeclareGroup leaves a group's existing queue as it is, even when the
// declaring broker would make it of another type: no error, a warning, the
// queue keeps its type and its member keeps getting its messages.
func TestDeclareGroupLeavesExistingQueue(t *testing.T) {
	ex := exchange()
	quorum := open(t, rabbitmq.WithExchange(ex), rabbitmq.WithQueueType(rabbitmq.Quorum))
	var logs syncbuf.Buffer
	classic := open(t, rabbitmq.WithExchange(ex), rabbitmq.WithQueueType(rabbitmq.Classic), rabbitmq.WithLogger(logs.Logger()))
	const topic = "declare.existing"
	c := newCollector()
	subscribe(t, quorum, topic, c.handler(nil), broker.Queue("g"))
	if err := classic.DeclareGroup(ctx(t), topic, "g"); err != nil {
		t.Fatalf("DeclareGroup of a quorum group through a classic broker: %v", err)
	}
	if s := logs.String(); !strings.Contains(s, "other arguments") || !strings.Contains(s, ex+":"+topic+":g") {
		t.Errorf("no warning naming the queue used as it is; logs:\n%s", s)
	}
	if err := redeclare(t, quorum, ex+":"+topic+":g", rabbitmq.Quorum); err != nil {
		t.Errorf("the group's queue is no longer the quorum queue it was: %v", err)
	}
	m := &broker.Message{Body: []byte("after")}
	publish(t, classic, topic, m)
	if got := c.wait(t, 1, 10*time.Second); got[0].ID != m.ID {
		t.Errorf("the member got %q, want the message published after the declaration", got[0].Body)
	}
}
