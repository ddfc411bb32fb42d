package watermill_test

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/watermill"
)

// A Watermill publisher and subscriber over a Herald broker (mem here; any
// Herald backend works the same). SubscribeInitialize declares the queue
// group, so a message published before Subscribe waits for it.
func Example() {
	ctx := context.Background()
	b := mem.New()
	defer b.Close(ctx)

	pub, _ := watermill.NewPublisher(b, watermill.PublisherConfig{})
	sub, _ := watermill.NewSubscriber(b.Connect(), watermill.SubscriberConfig{Group: "email"})
	defer sub.Close()

	if err := sub.SubscribeInitialize("user.registered"); err != nil {
		fmt.Println(err)
		return
	}
	if err := pub.Publish("user.registered", message.NewMessage("event-1", []byte("ada"))); err != nil {
		fmt.Println(err)
		return
	}
	msgs, err := sub.Subscribe(ctx, "user.registered")
	if err != nil {
		fmt.Println(err)
		return
	}
	msg := <-msgs
	fmt.Println(msg.UUID, string(msg.Payload))
	msg.Ack()
	// Output:
	// event-1 ada
}
