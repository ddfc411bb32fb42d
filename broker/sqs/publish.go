package sqs

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/herald-dev/herald/broker"
)

// Publish publishes m to topic's SNS topic, creating it when it does not
// exist, and returns nil once SNS has accepted it; SNS then copies it into
// the queue of every queue group and broadcast subscriber of the topic (none:
// the message is dropped). The error wraps [broker.ErrTooLarge] for a message
// over [WithMaxMessageBytes] once encoded and [broker.ErrClosed] after Close.
// [broker.Key] is ignored: standard queues do not keep order.
func (b *Broker) Publish(ctx context.Context, topic string, m *broker.Message, opts ...broker.PublishOption) error {
	if _, err := broker.NewPublishOptions(topic, m, opts...); err != nil {
		return fmt.Errorf("sqs: publish %q: %w", topic, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqs: publish %q: %w", topic, err)
	}
	if b.isClosed() {
		return fmt.Errorf("sqs: publish %q: %w", topic, broker.ErrClosed)
	}
	if m.ID == "" {
		m.ID = broker.NewID()
	}
	if err := b.publish(ctx, topic, m); err != nil {
		return fmt.Errorf("sqs: publish %q: %w", topic, err)
	}
	return nil
}

// publish is Publish without the checks: dead letters still go out while
// Close waits for the handlers.
func (b *Broker) publish(ctx context.Context, topic string, m *broker.Message) error {
	body, attr, err := encode(m)
	if err != nil {
		return err
	}
	if n := len(body) + len(attr) + len(attrName) + len("String"); n > b.cfg.maxMessageBytes {
		return fmt.Errorf("%w: %d bytes encoded, more than %d", broker.ErrTooLarge, n, b.cfg.maxMessageBytes)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.publishTimeout)
		defer cancel()
	}
	arn, err := b.topicARN(ctx, topic)
	if err != nil {
		return err
	}
	_, err = b.sns.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(arn),
		Message:  aws.String(body),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			attrName: {DataType: aws.String("String"), StringValue: aws.String(attr)},
		},
	})
	return err
}
