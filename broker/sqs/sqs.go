package sqs

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/herald-dev/herald/broker"
)

var _ broker.Broker = (*Broker)(nil)

// Broker is a [broker.Broker] on Amazon SNS and SQS. It is safe for
// concurrent use by multiple goroutines.
type Broker struct {
	cfg config
	sns *sns.Client
	sqs *awssqs.Client

	topicMu sync.Mutex
	topics  map[string]string // Herald topic → SNS topic ARN

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
}

// New returns a broker on the SNS topics and SQS queues of the account and
// region of awsCfg (see github.com/aws/aws-sdk-go-v2/config's
// LoadDefaultConfig). ctx is not kept.
//
// Options: [WithPrefix], [WithEndpoint], [WithWaitTime],
// [WithMaxMessageBytes], [WithPublishTimeout], [WithRetention],
// [WithRedrive], [WithLogger].
func New(ctx context.Context, awsCfg aws.Config, opts ...Option) (*Broker, error) {
	cfg := defaults()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqs: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, invalidOption("no AWS region")
	}
	b := &Broker{
		cfg: cfg,
		sns: sns.NewFromConfig(awsCfg, func(o *sns.Options) {
			if cfg.endpoint != "" {
				o.BaseEndpoint = aws.String(cfg.endpoint)
			}
		}),
		sqs: awssqs.NewFromConfig(awsCfg, func(o *awssqs.Options) {
			if cfg.endpoint != "" {
				o.BaseEndpoint = aws.String(cfg.endpoint)
			}
		}),
		topics: map[string]string{},
		subs:   map[*subscription]struct{}{},
	}
	return b, nil
}

// topicARN returns the ARN of topic's SNS topic, creating the topic when the
// broker has not seen it (CreateTopic returns the ARN of a topic that
// exists).
func (b *Broker) topicARN(ctx context.Context, topic string) (string, error) {
	b.topicMu.Lock()
	arn, ok := b.topics[topic]
	b.topicMu.Unlock()
	if ok {
		return arn, nil
	}
	out, err := b.sns.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(b.topicName(topic))})
	if err != nil {
		return "", fmt.Errorf("create SNS topic %q: %w", b.topicName(topic), err)
	}
	arn = aws.ToString(out.TopicArn)
	b.topicMu.Lock()
	b.topics[topic] = arn
	b.topicMu.Unlock()
	return arn, nil
}

// Close stops every subscription (stop receiving, give back the messages
// received but not started, let in-flight handlers finish, bounded by ctx;
// remove broadcast subscribers' queues). Calls after the first return nil.
func (b *Broker) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()

	errs := []error{broker.UnsubscribeAll(ctx, subs)}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqs: close: %w", err)
	}
	return nil
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (b *Broker) forget(s *subscription) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// As exposes the broker's AWS clients: target may be a **sns.Client or a
// **sqs.Client (of github.com/aws/aws-sdk-go-v2/service/sqs).
func (b *Broker) As(target any) bool {
	switch t := target.(type) {
	case **sns.Client:
		*t = b.sns
	case **awssqs.Client:
		*t = b.sqs
	default:
		return false
	}
	return true
}
