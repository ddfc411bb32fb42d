package broker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
)

// A message published to a topic reaches its subscriber with the same ID,
// headers and body, and the delivery fields set.
func ExampleBroker() {
	ctx := context.Background()
	b := mem.New()
	defer b.Close(ctx)

	got := make(chan *broker.Message, 1)
	_, err := b.Subscribe(ctx, "user.registered", func(_ context.Context, m *broker.Message) error {
		got <- m.Clone() // a handler must not keep m itself
		return nil       // nil acknowledges
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	m := &broker.Message{
		Header: broker.Header{"content-type": "application/json"},
		Body:   []byte(`{"user":"ada"}`),
	}
	if err := b.Publish(ctx, "user.registered", m); err != nil {
		fmt.Println(err)
		return
	}
	d := <-got
	fmt.Println("topic:", d.Topic)
	fmt.Println("attempt:", d.Attempt)
	fmt.Println("same ID:", d.ID == m.ID)
	fmt.Println("content-type:", d.Header.Get("content-type"))
	fmt.Println("body:", string(d.Body))
	// Output:
	// topic: user.registered
	// attempt: 1
	// same ID: true
	// content-type: application/json
	// body: {"user":"ada"}
}

// Two members of the queue group "email", each on its own connection as two
// processes would be, share the messages: each is handled by one of them.
func ExampleQueue() {
	ctx := context.Background()
	b := mem.New()
	defer b.Close(ctx)

	handled := make(chan string, 100)
	var members []broker.Broker
	for range 2 {
		member := b.Connect() // another client of the same in-process bus
		members = append(members, member)
		_, err := member.Subscribe(ctx, "user.registered", func(_ context.Context, m *broker.Message) error {
			handled <- m.ID
			return nil
		}, broker.Queue("email"))
		if err != nil {
			fmt.Println(err)
			return
		}
	}

	for i := range 10 {
		if err := b.Publish(ctx, "user.registered", &broker.Message{Body: []byte{byte(i)}}); err != nil {
			fmt.Println(err)
			return
		}
	}
	seen := map[string]int{}
	for range 10 {
		seen[<-handled]++
	}
	for _, member := range members {
		member.Close(ctx) // drains: no delivery can come after this
	}
	fmt.Println("messages handled:", len(seen))
	fmt.Println("extra deliveries:", len(handled))
	// Output:
	// messages handled: 10
	// extra deliveries: 0
}

// A handler error wrapped by Permanent sends the message to the dead-letter
// topic at once, with the reason and the original topic in its headers.
func ExamplePermanent() {
	ctx := context.Background()
	b := mem.New()
	defer b.Close(ctx)

	_, err := b.Subscribe(ctx, "order.placed", func(context.Context, *broker.Message) error {
		return broker.Permanent(errors.New("unknown product"))
	}, broker.Queue("billing"), broker.RetryBackoff(broker.Backoff{Initial: 10 * time.Millisecond}))
	if err != nil {
		fmt.Println(err)
		return
	}
	dead := make(chan *broker.Message, 1)
	_, err = b.Subscribe(ctx, broker.DefaultDeadLetterTopic("order.placed"), func(_ context.Context, m *broker.Message) error {
		dead <- m.Clone()
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	if err := b.Publish(ctx, "order.placed", &broker.Message{Body: []byte(`{"sku":"X-1"}`)}); err != nil {
		fmt.Println(err)
		return
	}
	d := <-dead
	fmt.Println("dead-letter topic:", d.Topic)
	fmt.Println("reason:", d.Header.Get(broker.HeaderDeadLetterReason))
	fmt.Println("attempts:", d.Header.Get(broker.HeaderDeadLetterAttempts))
	fmt.Println("from:", d.Header.Get(broker.HeaderDeadLetterTopic), "queue", d.Header.Get(broker.HeaderDeadLetterQueue))
	fmt.Println("body:", string(d.Body))
	// Output:
	// dead-letter topic: order.placed.dlq
	// reason: permanent: unknown product
	// attempts: 1
	// from: order.placed queue billing
	// body: {"sku":"X-1"}
}

// A publisher declares the queue group of its consumer at start, so that an
// event published before the consumer's first Subscribe waits for it.
func ExampleDeclareGroup() {
	ctx := context.Background()
	b := mem.New()
	defer b.Close(ctx)

	if err := broker.DeclareGroup(ctx, b, "user.registered", "email"); err != nil {
		fmt.Println(err)
		return
	}
	if err := b.Publish(ctx, "user.registered", &broker.Message{Body: []byte("ada")}); err != nil {
		fmt.Println(err)
		return
	}

	got := make(chan string, 1)
	consumer := b.Connect() // the email service, starting later
	defer consumer.Close(ctx)
	_, err := consumer.Subscribe(ctx, "user.registered", func(_ context.Context, m *broker.Message) error {
		got <- string(m.Body)
		return nil
	}, broker.Queue("email"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("kept for the group:", <-got)
	// Output:
	// kept for the group: ada
}
