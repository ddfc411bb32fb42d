package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	neturl "net/url"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// setUp creates what the subscription needs: the SNS topic, the queue, its
// policy letting the topic send to it, its redrive policy if asked, and the
// topic's subscription to it.
func (s *subscription) setUp(ctx context.Context) error {
	url, subARN, err := s.b.setUpQueue(ctx, queueSetup{
		topic: s.o.Topic, queue: s.queue, group: !s.broadcast, maxAttempts: s.o.MaxAttempts,
	})
	s.queueURL = url // also on an error, for tearDown
	if s.broadcast {
		s.subARN = subARN
	}
	return err
}

// queueSetup is a queue for setUpQueue to make ready.
type queueSetup struct {
	topic, queue string
	// group: a queue group's queue, shared by its members (its topic
	// subscription is reused, its redrive policy set).
	group bool
	// maxAttempts is the subscriber's MaxAttempts, for the redrive policy.
	maxAttempts int
	// keepRedrive leaves a redrive policy the queue has as it is (a
	// declaration: the members' options set it).
	keepRedrive bool
}

// setUpQueue creates the SNS topic of q.topic and the queue q.queue when
// missing, sets the queue's policy letting the topic send to it and, for a
// queue group with [WithRedrive], its redrive policy, and subscribes the
// queue to the topic. It returns the queue's URL and the SNS
// subscription's ARN; the URL also with an error once the queue exists.
func (b *Broker) setUpQueue(ctx context.Context, q queueSetup) (url, subARN string, err error) {
	topicARN, err := b.topicARN(ctx, q.topic)
	if err != nil {
		return "", "", err
	}
	url, arn, redrive, err := b.ensureQueue(ctx, q.queue)
	if err != nil {
		return "", "", err
	}
	attrs := map[string]string{"Policy": queuePolicy(arn, topicARN)}
	if b.cfg.redrive > 0 && q.group && !(q.keepRedrive && redrive != "") {
		_, dlqARN, _, err := b.ensureQueue(ctx, q.queue+dlqSuffix)
		if err != nil {
			return url, "", err
		}
		rp, _ := json.Marshal(map[string]string{
			"deadLetterTargetArn": dlqARN,
			"maxReceiveCount":     strconv.Itoa(q.maxAttempts + b.cfg.redrive),
		})
		attrs["RedrivePolicy"] = string(rp)
	}
	if _, err := b.sqs.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: attrs}); err != nil {
		return url, "", fmt.Errorf("set attributes of queue %q: %w", q.queue, err)
	}
	subARN, err = b.ensureSubscription(ctx, topicARN, arn, q.group)
	if err != nil {
		return url, "", err
	}
	return url, subARN, nil
}

// ensureQueue creates queue name unless it exists and returns its URL, its
// ARN and its redrive policy ("" when it has none).
func (b *Broker) ensureQueue(ctx context.Context, name string) (url, arn, redrive string, err error) {
	out, err := b.sqs.CreateQueue(ctx, &awssqs.CreateQueueInput{
		QueueName: aws.String(name),
		Attributes: map[string]string{
			"MessageRetentionPeriod": strconv.Itoa(int(b.cfg.retention / time.Second)),
		},
	})
	if err != nil {
		var exists *sqstypes.QueueNameExists
		if !errors.As(err, &exists) {
			return "", "", "", fmt.Errorf("create queue %q: %w", name, err)
		}
		// It exists with other attributes: use it as it is.
		got, gerr := b.sqs.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if gerr != nil {
			return "", "", "", fmt.Errorf("queue %q: %w", name, gerr)
		}
		out = &awssqs.CreateQueueOutput{QueueUrl: got.QueueUrl}
	}
	url = aws.ToString(out.QueueUrl)
	if b.cfg.endpoint != "" {
		// Emulators answer with a URL of their own host (kumo always says
		// localhost:4566): keep the path, use the endpoint.
		url = rebase(b.cfg.endpoint, url)
	}
	qa, err := b.sqs.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn, sqstypes.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		return "", "", "", fmt.Errorf("queue %q attributes: %w", name, err)
	}
	return url, qa.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], qa.Attributes[string(sqstypes.QueueAttributeNameRedrivePolicy)], nil
}

// queuePolicy lets SNS topic topicARN send to queue queueARN.
func queuePolicy(queueARN, topicARN string) string {
	p, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{
			"Sid":       "herald-sns",
			"Effect":    "Allow",
			"Principal": map[string]string{"Service": "sns.amazonaws.com"},
			"Action":    "sqs:SendMessage",
			"Resource":  queueARN,
			"Condition": map[string]any{"ArnEquals": map[string]string{"aws:SourceArn": topicARN}},
		}},
	})
	return string(p)
}

// ensureSubscription subscribes queue queueARN to topic topicARN with raw
// message delivery and returns the subscription's ARN. When reuse is set
// (a queue group's queue, shared by its members) an existing subscription of
// the queue is used, and if members racing each made one, all but one are
// removed: two subscriptions would put every message in the queue twice.
func (b *Broker) ensureSubscription(ctx context.Context, topicARN, queueARN string, reuse bool) (string, error) {
	if reuse {
		subs, err := b.subscriptionsOf(ctx, topicARN, queueARN)
		if err != nil {
			return "", err
		}
		if len(subs) > 0 {
			return subs[0], b.dedupe(ctx, subs)
		}
	}
	out, err := b.sns.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn:              aws.String(topicARN),
		Protocol:              aws.String("sqs"),
		Endpoint:              aws.String(queueARN),
		Attributes:            map[string]string{"RawMessageDelivery": "true"},
		ReturnSubscriptionArn: true,
	})
	if err != nil {
		return "", fmt.Errorf("subscribe queue to SNS topic: %w", err)
	}
	arn := aws.ToString(out.SubscriptionArn)
	if !reuse {
		return arn, nil
	}
	subs, err := b.subscriptionsOf(ctx, topicARN, queueARN)
	if err != nil {
		return "", err
	}
	if len(subs) == 0 {
		return arn, nil
	}
	return subs[0], b.dedupe(ctx, subs)
}

// subscriptionsOf lists the ARNs of the subscriptions of topicARN that
// deliver to queueARN, sorted.
func (b *Broker) subscriptionsOf(ctx context.Context, topicARN, queueARN string) ([]string, error) {
	var arns []string
	p := sns.NewListSubscriptionsByTopicPaginator(b.sns, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topicARN)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", err)
		}
		for _, s := range page.Subscriptions {
			if aws.ToString(s.Endpoint) == queueARN && aws.ToString(s.Protocol) == "sqs" && aws.ToString(s.SubscriptionArn) != "PendingConfirmation" {
				arns = append(arns, aws.ToString(s.SubscriptionArn))
			}
		}
	}
	slices.Sort(arns)
	return arns, nil
}

// dedupe removes every subscription of subs but the first.
func (b *Broker) dedupe(ctx context.Context, subs []string) error {
	for _, arn := range subs[1:] {
		if _, err := b.sns.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(arn)}); err != nil {
			return fmt.Errorf("remove duplicate subscription: %w", err)
		}
	}
	return nil
}

// rebase returns the URL of endpoint with the path (and query) of u.
func rebase(endpoint, u string) string {
	e, err := neturl.Parse(endpoint)
	if err != nil {
		return u
	}
	p, err := neturl.Parse(u)
	if err != nil {
		return u
	}
	p.Scheme, p.Host, p.User = e.Scheme, e.Host, e.User
	return p.String()
}
