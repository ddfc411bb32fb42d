package sqs_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/herald-dev/herald/broker"
)

// maxReceiveCount returns the maxReceiveCount of the redrive policy of the
// one queue group queue of topic ("" when it has none).
func maxReceiveCount(t *testing.T, b broker.Broker, topic string) string {
	t.Helper()
	var q *awssqs.Client
	if !broker.As(b, &q) {
		t.Fatal("As(**sqs.Client) = false")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lq, err := q.ListQueues(ctx, &awssqs.ListQueuesInput{QueueNamePrefix: aws.String("herald-" + strings.ReplaceAll(topic, ".", "_"))})
	if err != nil {
		t.Fatal(err)
	}
	var queue string
	for _, u := range lq.QueueUrls {
		if !strings.HasSuffix(u, "-dlq") {
			if queue != "" {
				t.Fatalf("more than one queue of %s: %v", topic, lq.QueueUrls)
			}
			queue = u[strings.LastIndex(u, "/")+1:]
		}
	}
	if queue == "" {
		t.Fatalf("no queue of %s among %v", topic, lq.QueueUrls)
	}
	url, err := q.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(queue)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := q.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl: url.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		t.Fatal(err)
	}
	raw := out.Attributes[string(sqstypes.QueueAttributeNameRedrivePolicy)]
	if raw == "" {
		return ""
	}
	var rp struct {
		MaxReceiveCount json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(raw), &rp); err != nil {
		t.Fatalf("redrive policy %q: %v", raw, err)
	}
	return strings.Trim(string(rp.MaxReceiveCount), `"`)
}

// With WithRedrive, a declared group's queue has the redrive policy of the
// default MaxAttempts until a member joins with its own; declaring the
// group again leaves the member's.
func TestDeclareGroupRedrive(t *testing.T) {
	b := open(t, "&redrive=2")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topic := unique("declredrive")
	if err := broker.DeclareGroup(ctx, b, topic, "w"); err != nil {
		t.Fatalf("DeclareGroup: %v", err)
	}
	if got := maxReceiveCount(t, b, topic); got != "7" {
		t.Errorf("declared: maxReceiveCount %q, want 7 (the default 5 attempts + 2)", got)
	}
	sub, err := b.Subscribe(ctx, topic, func(context.Context, *broker.Message) error { return nil }, broker.Queue("w"), broker.MaxAttempts(10))
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe(context.Background()) })
	if got := maxReceiveCount(t, b, topic); got != "12" {
		t.Errorf("after a member joined with MaxAttempts 10: maxReceiveCount %q, want 12", got)
	}
	if err := broker.DeclareGroup(ctx, b, topic, "w"); err != nil {
		t.Fatalf("DeclareGroup of an existing group: %v", err)
	}
	if got := maxReceiveCount(t, b, topic); got != "12" {
		t.Errorf("declared again: maxReceiveCount %q, want the member's 12", got)
	}
}
