package gcppubsub_test

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/herald-dev/herald/broker"
)

// subscriptionOf reads the Pub/Sub subscription of queue group group on
// topic (default prefix).
func subscriptionOf(t *testing.T, b broker.Broker, topic, group string) *pubsubpb.Subscription {
	t.Helper()
	var c *pubsub.Client
	if !broker.As(b, &c) {
		t.Fatal("As(**pubsub.Client) = false")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{
		Subscription: "projects/" + project + "/subscriptions/herald." + topic + "~" + group,
	})
	if err != nil {
		t.Fatalf("GetSubscription: %v", err)
	}
	return s
}

// settings is what a member's options set on a group's subscription.
type settings struct {
	ackDeadline int32
	maxAttempts int32
	dlTopic     string
	declared    bool
}

func settingsOf(s *pubsubpb.Subscription) settings {
	_, declared := s.GetLabels()["herald-declared"]
	return settings{
		ackDeadline: s.GetAckDeadlineSeconds(),
		maxAttempts: s.GetDeadLetterPolicy().GetMaxDeliveryAttempts(),
		dlTopic:     s.GetDeadLetterPolicy().GetDeadLetterTopic(),
		declared:    declared,
	}
}

// A declared group's subscription has the default options' settings until
// its first member joins, which sets its own (as if it had made the
// subscription); later members and declarations leave them as they are.
func TestDeclareGroupSettings(t *testing.T) {
	srv := startServer(t)
	b := open(t, srv, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const topic = "declare.settings"
	dlTopic := "projects/" + project + "/topics/herald." + broker.DefaultDeadLetterTopic(topic)
	if err := broker.DeclareGroup(ctx, b, topic, "g"); err != nil {
		t.Fatalf("DeclareGroup: %v", err)
	}
	want := settings{ackDeadline: 30, maxAttempts: broker.DefaultMaxAttempts + 1, dlTopic: dlTopic, declared: true}
	if got := settingsOf(subscriptionOf(t, b, topic, "g")); got != want {
		t.Errorf("declared subscription %+v, want %+v", got, want)
	}

	first, err := b.Subscribe(ctx, topic, func(context.Context, *broker.Message) error { return nil },
		broker.Queue("g"), broker.MaxAttempts(10), broker.AckWait(time.Minute))
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = first.Unsubscribe(context.Background()) })
	want = settings{ackDeadline: 60, maxAttempts: 11, dlTopic: dlTopic}
	if got := settingsOf(subscriptionOf(t, b, topic, "g")); got != want {
		t.Errorf("after the first member joined: %+v, want its settings %+v", got, want)
	}

	if err := broker.DeclareGroup(ctx, b, topic, "g"); err != nil {
		t.Fatalf("DeclareGroup of a group with a member: %v", err)
	}
	second, err := b.Subscribe(ctx, topic, func(context.Context, *broker.Message) error { return nil },
		broker.Queue("g"), broker.MaxAttempts(3))
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = second.Unsubscribe(context.Background()) })
	if got := settingsOf(subscriptionOf(t, b, topic, "g")); got != want {
		t.Errorf("after a declaration and a second member: %+v, want the first member's %+v", got, want)
	}
}
