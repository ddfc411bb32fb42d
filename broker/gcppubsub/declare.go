package gcppubsub

import (
	"context"
	"fmt"
	"log/slog"
	"maps"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/herald-dev/herald/broker"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

var _ broker.GroupDeclarer = (*Broker)(nil)

// declaredLabel marks a subscription that [Broker.DeclareGroup] created and
// no member has joined yet: its settings are the defaults', until its first
// member's Subscribe sets its own and removes the label.
const declaredLabel = "herald-declared"

// DeclareGroup creates the queue group group's subscription on topic,
// "<prefix><topic>~<group>", as its first Subscribe would with the default
// options ([broker.DefaultAckWait], [broker.DefaultMaxAttempts] for the
// dead-letter policy, …), creating the topic and the dead-letter topic when
// missing. A Pub/Sub topic keeps a message only for the subscriptions it
// has when the message is published: from the moment DeclareGroup returns,
// the subscription keeps every message published to topic (for Pub/Sub's
// retention, 7 days by default) until a member pulls it.
//
// The subscription carries the label "herald-declared": the group's first
// Subscribe sets the settings its options ask for (ack deadline, dead-letter
// and retry policies) and removes the label, so that a member joins a
// declared group as it would have made it. A subscription that exists is
// left as it is. It implements [broker.GroupDeclarer].
func (b *Broker) DeclareGroup(ctx context.Context, topic, group string) error {
	if err := b.declareGroup(ctx, topic, group); err != nil {
		return fmt.Errorf("gcppubsub: declare group %q on %q: %w", group, topic, err)
	}
	return nil
}

func (b *Broker) declareGroup(ctx context.Context, topic, group string) error {
	if err := broker.ValidateGroup(topic, group); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.isClosed() {
		return broker.ErrClosed
	}
	o, err := broker.DeclaredGroupOptions(topic, group)
	if err != nil {
		return err
	}
	id := b.groupSubscriptionID(topic, group)
	cfg, err := b.subscriptionConfig(ctx, id, o)
	if err != nil {
		return err
	}
	cfg.Labels = map[string]string{declaredLabel: "true"}
	if _, err := b.c.SubscriptionAdminClient.CreateSubscription(ctx, cfg); err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create subscription %q: %w", id, err)
	}
	return nil
}

// adoptDeclared gives the existing subscription cfg names the settings of
// cfg when [Broker.DeclareGroup] made it and no member has set its own yet
// (it has [declaredLabel]), and removes the label. Other subscriptions are
// used as they are. A failure is logged, not returned: the subscription
// delivers all the same, with the declaration's settings.
func (b *Broker) adoptDeclared(ctx context.Context, cfg *pubsubpb.Subscription, log *slog.Logger) {
	cur, err := b.c.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: cfg.Name})
	if err != nil {
		log.Warn("gcppubsub: cannot read the group's subscription; using it as it is", "subscription", cfg.Name, "err", err)
		return
	}
	if _, ok := cur.GetLabels()[declaredLabel]; !ok {
		return
	}
	labels := maps.Clone(cur.GetLabels())
	delete(labels, declaredLabel)
	upd := &pubsubpb.Subscription{
		Name:               cfg.Name,
		AckDeadlineSeconds: cfg.AckDeadlineSeconds,
		DeadLetterPolicy:   cfg.DeadLetterPolicy,
		RetryPolicy:        cfg.RetryPolicy,
		Labels:             labels,
	}
	mask := &fieldmaskpb.FieldMask{Paths: []string{"ack_deadline_seconds", "dead_letter_policy", "retry_policy", "labels"}}
	if _, err := b.c.SubscriptionAdminClient.UpdateSubscription(ctx, &pubsubpb.UpdateSubscriptionRequest{Subscription: upd, UpdateMask: mask}); err != nil {
		log.Warn("gcppubsub: cannot set the member's settings on the declared group's subscription; using it as it is", "subscription", cfg.Name, "err", err)
	}
}
