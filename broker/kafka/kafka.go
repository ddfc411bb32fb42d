package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	_ broker.Broker         = (*Broker)(nil)
	_ broker.BatchPublisher = (*Broker)(nil)
)

// Broker is a [broker.Broker] on Apache Kafka. It is safe for concurrent
// use by multiple goroutines.
type Broker struct {
	cfg   config
	seeds []string
	cl    *kgo.Client // producer and metadata
	adm   *kadm.Client

	topicMu sync.Mutex
	topics  map[string]bool // topics known to exist

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
}

// New connects to the Kafka cluster reachable at seeds (host:port) and
// returns a broker producing through an idempotent producer. ctx bounds the
// first contact with the cluster.
//
// Options: [WithPartitions], [WithReplicationFactor], [WithMaxMessageBytes],
// [WithPublishTimeout], [WithRevokeGrace], [WithGroupTiming],
// [WithPrefetch], [WithKgoOptions], [WithLogger].
func New(ctx context.Context, seeds []string, opts ...Option) (*Broker, error) {
	cfg := defaults()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if len(seeds) == 0 {
		return nil, invalidOption("no seed broker")
	}
	if err := ctx.Err(); err != nil { // make no client for a context already done
		return nil, fmt.Errorf("kafka: connect to %v: %w", seeds, err)
	}
	b := &Broker{cfg: cfg, seeds: seeds, topics: map[string]bool{}, subs: map[*subscription]struct{}{}}
	copts := append(b.clientOptions(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(cfg.maxMessageBytes),
		kgo.ProducerLinger(0),
	)
	cl, err := kgo.NewClient(append(copts, cfg.kgoOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: client: %w", err)
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka: connect to %v: %w", seeds, err)
	}
	b.cl, b.adm = cl, kadm.NewClient(cl)
	return b, nil
}

// clientOptions are the options every client of the broker starts with.
func (b *Broker) clientOptions() []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(b.seeds...),
		kgo.ClientID("herald"),
		kgo.WithLogger(slogger{b.cfg.logger}),
	}
}

// ensureTopics creates the topics that do not exist yet, with the broker's
// partition count and max message size, and with the broker's append time as
// the records' timestamp (so that PublishedAt is the cluster's clock).
func (b *Broker) ensureTopics(ctx context.Context, topics ...string) error {
	b.topicMu.Lock()
	var missing []string
	for _, t := range topics {
		if !b.topics[t] {
			missing = append(missing, t)
		}
	}
	b.topicMu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	maxBytes := strconv.Itoa(int(b.cfg.maxMessageBytes))
	appendTime := "LogAppendTime"
	resp, err := b.adm.CreateTopics(ctx, b.cfg.partitions, b.cfg.replication, map[string]*string{
		"max.message.bytes":      &maxBytes,
		"message.timestamp.type": &appendTime,
	}, missing...)
	if err != nil {
		return fmt.Errorf("create topics %v: %w", missing, err)
	}
	var errs []error
	for _, t := range missing {
		r, ok := resp[t]
		if ok && r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %q: %w", t, r.Err))
			continue
		}
		b.topicMu.Lock()
		b.topics[t] = true
		b.topicMu.Unlock()
	}
	return errors.Join(errs...)
}

// Close stops every subscription (stop fetching, let in-flight handlers
// finish, bounded by ctx, commit, leave the group), then flushes and closes
// the producer. Calls after the first return nil.
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
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if err := b.cl.Flush(fctx); err != nil {
		b.cfg.logger.Warn("kafka: flush on close", "err", err)
	}
	cancel()
	b.cl.Close()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafka: close: %w", err)
	}
	return nil
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// forget removes s from the subscriptions Close stops.
func (b *Broker) forget(s *subscription) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// As exposes the broker's franz-go clients: target may be a **kgo.Client
// (the producer) or a **kadm.Client.
func (b *Broker) As(target any) bool {
	switch t := target.(type) {
	case **kgo.Client:
		*t = b.cl
	case **kadm.Client:
		*t = b.adm
	default:
		return false
	}
	return true
}
