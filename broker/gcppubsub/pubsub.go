package gcppubsub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/herald-dev/herald/broker"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	_ broker.Broker         = (*Broker)(nil)
	_ broker.BatchPublisher = (*Broker)(nil)
)

// Broker is a [broker.Broker] on Google Cloud Pub/Sub. It is safe for
// concurrent use by multiple goroutines.
type Broker struct {
	cfg     config
	project string
	c       *pubsub.Client

	pubMu      sync.Mutex
	publishers map[string]*pubsub.Publisher // by topic ID
	topicMu    sync.Mutex
	topics     map[string]bool // topic IDs known to exist

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
}

// New returns a broker on the Pub/Sub topics and subscriptions of project.
// Without [WithClientOptions] the client finds credentials as Google's
// libraries do (Application Default Credentials), or talks to the emulator
// named by PUBSUB_EMULATOR_HOST.
//
// Options: [WithPrefix], [WithClientOptions], [WithPublishTimeout],
// [WithPublishDelay], [WithMaxMessageBytes], [WithServerBackoff],
// [WithoutDeadLetterPolicy], [WithLogger].
func New(ctx context.Context, project string, opts ...Option) (*Broker, error) {
	cfg := defaults()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if project == "" {
		return nil, invalidOption("empty project ID")
	}
	c, err := pubsub.NewClient(ctx, project, cfg.clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("gcppubsub: client: %w", err)
	}
	return &Broker{
		cfg: cfg, project: project, c: c,
		publishers: map[string]*pubsub.Publisher{},
		topics:     map[string]bool{},
		subs:       map[*subscription]struct{}{},
	}, nil
}

func (b *Broker) topicName(id string) string { return "projects/" + b.project + "/topics/" + id }
func (b *Broker) subName(id string) string   { return "projects/" + b.project + "/subscriptions/" + id }

// ensureTopic creates the Pub/Sub topic id when the broker has not seen it.
func (b *Broker) ensureTopic(ctx context.Context, id string) error {
	b.topicMu.Lock()
	known := b.topics[id]
	b.topicMu.Unlock()
	if known {
		return nil
	}
	_, err := b.c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: b.topicName(id)})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create topic %q: %w", id, err)
	}
	b.topicMu.Lock()
	b.topics[id] = true
	b.topicMu.Unlock()
	return nil
}

// publisher returns the broker's publisher of topic id.
func (b *Broker) publisher(id string) *pubsub.Publisher {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	p := b.publishers[id]
	if p == nil {
		p = b.c.Publisher(b.topicName(id))
		p.EnableMessageOrdering = true
		p.PublishSettings.DelayThreshold = b.cfg.publishDelay
		p.PublishSettings.ByteThreshold = 9_000_000
		p.PublishSettings.Timeout = b.cfg.publishTimeout
		b.publishers[id] = p
	}
	return p
}

// Close stops every subscription (stop pulling, give back the messages
// waiting for a redelivery, let in-flight handlers finish, bounded by ctx;
// delete broadcast subscriptions), then stops the publishers, sending what
// they hold, and closes the client. Calls after the first return nil.
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
	b.pubMu.Lock()
	pubs := b.publishers
	b.publishers = map[string]*pubsub.Publisher{}
	b.pubMu.Unlock()
	stopped := make(chan struct{})
	go func() {
		for _, p := range pubs {
			p.Stop()
		}
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		b.cfg.logger.Warn("gcppubsub: publishers still stopping at close")
	}
	if err := b.c.Close(); err != nil {
		errs = append(errs, err)
	}
	for _, f := range b.cfg.onClose {
		if err := f(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gcppubsub: close: %w", err)
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

// As exposes the broker's Pub/Sub client: target may be a **pubsub.Client.
func (b *Broker) As(target any) bool {
	if t, ok := target.(**pubsub.Client); ok {
		*t = b.c
		return true
	}
	return false
}
