package redis

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/herald-dev/herald/broker"
	goredis "github.com/redis/go-redis/v9"
)

// Subscribe creates the consumer group of the subscription when it does not
// exist and starts delivering the group's entries of topic's stream to h.
//
// With [broker.Queue] the group is named after the queue group, created at
// the start of the stream (id 0, with MKSTREAM): a new group gets every
// entry still in the stream, those published before it existed included.
// Without, the subscription is a broadcast subscriber with a group of its
// own, created at the stream's end ("$") and destroyed by Unsubscribe.
//
// ctx bounds the set-up only. The error wraps [broker.ErrClosed] after
// Close.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	o, err := broker.NewSubscribeOptions(topic, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("redis: subscribe %q: %w", topic, err)
	}
	if b.isClosed() {
		return nil, fmt.Errorf("redis: subscribe %q: %w", topic, broker.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redis: subscribe %q: %w", topic, err)
	}
	s := newSubscription(b, h, o)
	if err := s.createGroups(ctx); err != nil {
		return nil, fmt.Errorf("redis: subscribe %q: %w", topic, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		if s.broadcast {
			s.destroyGroup(ctx)
		}
		return nil, fmt.Errorf("redis: subscribe %q: %w", topic, broker.ErrClosed)
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	s.start()
	return s, nil
}

func (b *Broker) forget(s *subscription) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// createGroups creates the subscription's group on the topic stream and on
// the group's redo stream, with the streams if they are missing. A group
// that exists is kept as it is.
func (s *subscription) createGroups(ctx context.Context) error {
	start := queueGroupStart
	if s.broadcast {
		start = "$"
	}
	return s.b.createGroup(ctx, s.opts.Topic, s.group, start)
}

// queueGroupStart is where a queue group's consumer group starts on its
// topic's stream, whether Subscribe or [Broker.DeclareGroup] creates it:
// at the start, so that a new group gets every entry still in the stream.
const queueGroupStart = "0"

// createGroup creates the consumer group group on topic's stream, starting
// at start, and on the group's redo stream, with the streams if they are
// missing. A group that exists is kept as it is (BUSYGROUP).
func (b *Broker) createGroup(ctx context.Context, topic, group, start string) error {
	keys := []struct{ key, start string }{
		{streamKey(b.cfg.prefix, topic), start},
		{redoKey(b.cfg.prefix, topic, group), "0"},
	}
	for _, g := range keys {
		err := retry(ctx, func() error { return b.client.XGroupCreateMkStream(ctx, g.key, group, g.start).Err() })
		if err != nil && !goredis.HasErrorPrefix(err, "BUSYGROUP") {
			return fmt.Errorf("create consumer group %q on %q: %w", group, g.key, err)
		}
	}
	return nil
}

// destroyGroup removes a broadcast subscriber's group and its retry keys.
func (s *subscription) destroyGroup(ctx context.Context) {
	c := s.b.client
	if err := c.XGroupDestroy(ctx, s.stream, s.group).Err(); err != nil {
		s.opts.Logger.Warn("redis: cannot destroy a broadcast subscriber's consumer group", "topic", s.opts.Topic, "group", s.group, "err", err)
	}
	if err := c.Del(ctx, s.redo, s.delay).Err(); err != nil {
		s.opts.Logger.Warn("redis: cannot delete a broadcast subscriber's retry keys", "topic", s.opts.Topic, "group", s.group, "err", err)
	}
}

// consumerName names a subscription's consumer within its group: unique per
// process and subscription, and telling where it runs in XINFO CONSUMERS.
func consumerName() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "herald"
	}
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + broker.NewID()[24:]
}
