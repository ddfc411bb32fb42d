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
	"google.golang.org/protobuf/types/known/durationpb"
)

// Limits Pub/Sub puts on subscription settings.
const (
	minAckDeadline     = 10 * time.Second
	maxAckDeadline     = 600 * time.Second
	maxRetryBackoff    = 600 * time.Second
	minDeliveryAttempt = 5
	maxDeliveryAttempt = 100
	// broadcastTTL is the expiration of a broadcast subscription: the
	// shortest Pub/Sub allows, for a subscriber whose process died without
	// deleting it.
	broadcastTTL = 24 * time.Hour
	// broadcastStreams is how many streaming pulls a broadcast subscriber
	// opens at least.
	broadcastStreams = 4
	// maxStreams bounds the streaming pulls a subscriber opens for its
	// Concurrency.
	maxStreams = 8
)

// Subscribe starts delivering the messages of topic to h, creating the
// topic (and the dead-letter topic) when they do not exist. With
// [broker.Queue] it uses the group's subscription, "<prefix><topic>~<queue>",
// creating it when missing: it is durable and shared by every member (the
// first member of a group made by [Broker.DeclareGroup] sets its settings
// on it).
// Without, it creates a subscription of its own, deleted by Unsubscribe.
// Messages published after Subscribe returns are delivered.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	o, err := broker.NewSubscribeOptions(topic, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcppubsub: subscribe %q: %w", topic, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gcppubsub: subscribe %q: %w", topic, err)
	}
	if b.isClosed() {
		return nil, fmt.Errorf("gcppubsub: subscribe %q: %w", topic, broker.ErrClosed)
	}
	s, err := b.newSubscription(ctx, h, o)
	if err != nil {
		return nil, fmt.Errorf("gcppubsub: subscribe %q: %w", topic, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = s.Unsubscribe(ctx)
		return nil, fmt.Errorf("gcppubsub: subscribe %q: %w", topic, broker.ErrClosed)
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go s.receive()
	return s, nil
}

// subscription is one Subscribe: a Pub/Sub subscriber and the messages it
// has in hand.
type subscription struct {
	b         *Broker
	h         broker.Handler
	o         *broker.SubscribeOptions
	id        string // Pub/Sub subscription ID
	broadcast bool
	sub       *pubsub.Subscriber

	hctx      context.Context // the handlers'; cancelled when Unsubscribe gives up on them
	hcancel   context.CancelFunc
	rctx      context.Context // Receive's; cancelled to stop pulling
	rcancel   context.CancelFunc
	sem       chan struct{} // Concurrency handlers at once
	stopped   chan struct{} // closed when Unsubscribe starts
	abandoned chan struct{} // closed when Unsubscribe gives up on the handlers

	mu       sync.Mutex
	stopping bool
	inHand   map[*pubsub.Message]*time.Timer // running (nil timer) or waiting to be nacked
	attempts map[string]int                  // local delivery counts, without a dead-letter policy

	received  chan struct{} // closed when the receive loop returns
	unsubOnce sync.Once
}

func (b *Broker) newSubscription(ctx context.Context, h broker.Handler, o *broker.SubscribeOptions) (*subscription, error) {
	s := &subscription{
		b: b, h: h, o: o,
		broadcast: o.Queue == "",
		sem:       make(chan struct{}, o.Concurrency),
		stopped:   make(chan struct{}),
		abandoned: make(chan struct{}),
		inHand:    map[*pubsub.Message]*time.Timer{},
		attempts:  map[string]int{},
		received:  make(chan struct{}),
	}
	if s.broadcast {
		s.id = b.broadcastSubscriptionID(o.Topic)
	} else {
		s.id = b.groupSubscriptionID(o.Topic, o.Queue)
	}
	cfg, err := b.subscriptionConfig(ctx, s.id, o)
	if err != nil {
		return nil, err
	}
	if _, err := b.c.SubscriptionAdminClient.CreateSubscription(ctx, cfg); err != nil {
		if s.broadcast || status.Code(err) != codes.AlreadyExists {
			return nil, fmt.Errorf("create subscription %q: %w", s.id, err)
		}
		b.adoptDeclared(ctx, cfg, o.Logger)
	}
	s.sub = b.c.Subscriber(b.subName(s.id))
	s.sub.ReceiveSettings = pubsub.ReceiveSettings{
		// Concurrency handlers, and as many messages again waiting for a
		// redelivery's delay or for a handler.
		MaxOutstandingMessages: 2 * o.Concurrency,
		MaxOutstandingBytes:    -1,
		// A live subscriber keeps extending the messages it handles; a dead
		// one's come back within about AckWait.
		MaxExtension:               time.Hour,
		MaxDurationPerAckExtension: clamp(o.AckWait, minAckDeadline, maxAckDeadline),
		NumGoroutines:              max(b.cfg.streams, min(o.Concurrency, maxStreams)),
		ShutdownOptions:            &pubsub.ShutdownOptions{Behavior: pubsub.ShutdownBehaviorWaitForProcessing, Timeout: -1},
	}
	if s.broadcast {
		// The subscription's only reader: more streams pull faster and
		// cannot starve another member.
		s.sub.ReceiveSettings.NumGoroutines = max(s.sub.ReceiveSettings.NumGoroutines, broadcastStreams)
	}
	s.hctx, s.hcancel = context.WithCancel(context.Background())
	s.rctx, s.rcancel = context.WithCancel(context.Background())
	return s, nil
}

// subscriptionConfig creates the topics of o (its topic, and its
// dead-letter topic for the dead-letter policy) when they do not exist, and
// returns the configuration of the subscription id for the subscriber o
// describes: what Subscribe creates, and what [Broker.DeclareGroup] creates
// with the default options.
func (b *Broker) subscriptionConfig(ctx context.Context, id string, o *broker.SubscribeOptions) (*pubsubpb.Subscription, error) {
	topicID, err := b.topicID(o.Topic)
	if err != nil {
		return nil, err
	}
	dlID, err := b.topicID(o.DeadLetterTopic)
	if err != nil {
		return nil, err
	}
	if err := b.ensureTopic(ctx, topicID); err != nil {
		return nil, err
	}
	if b.cfg.deadLetter {
		if err := b.ensureTopic(ctx, dlID); err != nil {
			return nil, err
		}
	}
	cfg := &pubsubpb.Subscription{
		Name:                  b.subName(id),
		Topic:                 b.topicName(topicID),
		AckDeadlineSeconds:    int32(clamp(o.AckWait, minAckDeadline, maxAckDeadline) / time.Second),
		EnableMessageOrdering: true,
	}
	if b.cfg.deadLetter {
		cfg.DeadLetterPolicy = &pubsubpb.DeadLetterPolicy{
			DeadLetterTopic:     b.topicName(dlID),
			MaxDeliveryAttempts: int32(min(max(o.MaxAttempts+1, minDeliveryAttempt), maxDeliveryAttempt)),
		}
	}
	if b.cfg.serverBackoff {
		cfg.RetryPolicy = &pubsubpb.RetryPolicy{
			MinimumBackoff: durationpb.New(min(o.Backoff.Initial, maxRetryBackoff)),
			MaximumBackoff: durationpb.New(min(max(o.Backoff.Max, o.Backoff.Initial), maxRetryBackoff)),
		}
	}
	if o.Queue == "" {
		cfg.ExpirationPolicy = &pubsubpb.ExpirationPolicy{Ttl: durationpb.New(broadcastTTL)}
	}
	return cfg, nil
}

func clamp(d, lo, hi time.Duration) time.Duration { return min(max(d, lo), hi) }

// Topic is the topic subscribed to.
func (s *subscription) Topic() string { return s.o.Topic }

// Queue is the queue group joined, or "" for a broadcast subscriber.
func (s *subscription) Queue() string { return s.o.Queue }

// receive runs Pub/Sub's Receive until Unsubscribe, starting it again after
// an error (the server unreachable for longer than the client retries).
func (s *subscription) receive() {
	defer close(s.received)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		err := s.sub.Receive(s.rctx, s.handle)
		if s.rctx.Err() != nil {
			return
		}
		s.o.Logger.Warn("gcppubsub: receive stopped; starting again", "topic", s.o.Topic, "subscription", s.id, "err", err)
		select {
		case <-time.After(wait):
		case <-s.rctx.Done():
			return
		}
	}
}

// handle is Pub/Sub's callback: it runs the handler on msg, at most
// Concurrency at once, and settles msg by the decision.
func (s *subscription) handle(_ context.Context, msg *pubsub.Message) {
	if !s.take(msg) {
		msg.Nack()
		return
	}
	select {
	case s.sem <- struct{}{}:
	case <-s.stopped:
		s.settle(msg, false)
		return
	}
	m := s.message(msg)
	res := make(chan broker.Decision, 1)
	go func() {
		defer func() { <-s.sem }()
		res <- broker.Process(s.hctx, s.h, m, s.o)
	}()
	var d broker.Decision
	select {
	case d = <-res:
	case <-s.abandoned:
		// Unsubscribe gave up on the handler and nacked msg; returning
		// lets the client finish and send that nack.
		return
	}
	switch d.Action {
	case broker.Ack:
		s.settle(msg, true)
		return
	case broker.DeadLetter:
		if s.deadLetter(m, d.Err) {
			s.settle(msg, true)
			return
		}
		d.Delay = s.o.Backoff.Delay(m.Attempt)
	}
	s.retry(msg, d.Delay)
}

// message turns msg into the message a handler gets.
func (s *subscription) message(msg *pubsub.Message) *broker.Message {
	h, id, ok := decodeAttrs(msg.Attributes)
	if !ok {
		s.o.Logger.Warn("gcppubsub: damaged packed headers", "topic", s.o.Topic, "pubsub_id", msg.ID)
	}
	if id == "" {
		id = msg.ID // published by something other than Herald
	}
	m := &broker.Message{ID: id, Header: h, Body: msg.Data, Topic: s.o.Topic, PublishedAt: msg.PublishTime}
	if m.Body == nil {
		m.Body = []byte{}
	}
	if msg.DeliveryAttempt != nil && *msg.DeliveryAttempt > 0 {
		m.Attempt = *msg.DeliveryAttempt
	} else {
		s.mu.Lock()
		s.attempts[msg.ID]++
		m.Attempt = s.attempts[msg.ID]
		s.mu.Unlock()
	}
	return m
}

// deadLetter publishes the dead letter of m and reports whether Pub/Sub
// stored it.
func (s *subscription) deadLetter(m *broker.Message, reason error) bool {
	ctx, cancel := context.WithTimeout(s.hctx, s.b.cfg.publishTimeout)
	defer cancel()
	dl := broker.NewDeadLetter(m, s.o, reason)
	if err := s.b.publish(ctx, s.o.DeadLetterTopic, "", []*broker.Message{dl}); err != nil {
		s.o.Logger.Warn("gcppubsub: dead letter not published; the message will be retried", "topic", s.o.Topic, "msg_id", m.ID, "attempt", m.Attempt, "err", err)
		return false
	}
	return true
}

// retry nacks msg after delay, holding it until then (it keeps its lease),
// or at once when the subscription stops, the server spaces redeliveries
// ([WithServerBackoff]) or there is no delay.
func (s *subscription) retry(msg *pubsub.Message, delay time.Duration) {
	if delay <= 0 || s.b.cfg.serverBackoff || s.hctx.Err() != nil {
		s.settle(msg, false)
		return
	}
	s.mu.Lock()
	if _, ok := s.inHand[msg]; !ok || s.stopping {
		s.mu.Unlock()
		s.settle(msg, false)
		return
	}
	s.inHand[msg] = time.AfterFunc(delay, func() { s.settle(msg, false) })
	s.mu.Unlock()
}

// take records msg as in hand, unless the subscription is stopping.
func (s *subscription) take(msg *pubsub.Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.inHand[msg] = nil
	return true
}

// settle acknowledges or nacks msg once, if it is still in hand.
func (s *subscription) settle(msg *pubsub.Message, ack bool) {
	s.mu.Lock()
	t, ok := s.inHand[msg]
	delete(s.inHand, msg)
	if ack || !ok {
		delete(s.attempts, msg.ID)
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	if t != nil {
		t.Stop()
	}
	if ack {
		msg.Ack()
	} else {
		msg.Nack()
	}
}

// Unsubscribe stops pulling, nacks the messages waiting for a redelivery's
// delay and those pulled but not started, waits for the handlers in flight
// (bounded by ctx), and deletes a broadcast subscriber's subscription. When
// ctx ends first, the handlers' context is cancelled, their messages are
// nacked (so another member gets them, with Attempt one higher) and the
// error wraps ctx.Err(). Calls after the first return nil.
func (s *subscription) Unsubscribe(ctx context.Context) error {
	var err error
	s.unsubOnce.Do(func() { err = s.unsubscribe(ctx) })
	return err
}

func (s *subscription) unsubscribe(ctx context.Context) error {
	s.b.forget(s)
	s.mu.Lock()
	s.stopping = true
	var waiting []*pubsub.Message
	for msg, t := range s.inHand {
		if t != nil {
			waiting = append(waiting, msg)
		}
	}
	s.mu.Unlock()
	close(s.stopped)
	for _, msg := range waiting {
		s.settle(msg, false)
	}
	s.rcancel()
	var rerr error
	select {
	case <-s.received:
	case <-ctx.Done():
		s.hcancel()
		s.mu.Lock()
		var running []*pubsub.Message
		for msg := range s.inHand {
			running = append(running, msg)
		}
		s.mu.Unlock()
		for _, msg := range running {
			s.settle(msg, false)
		}
		close(s.abandoned)
		// Let the client send those nacks, so that another member gets the
		// messages now rather than after their ack deadline.
		select {
		case <-s.received:
		case <-time.After(2 * time.Second):
		}
		rerr = fmt.Errorf("gcppubsub: unsubscribe %q: handlers still running: %w", s.o.Topic, ctx.Err())
		s.o.Logger.Warn("gcppubsub: unsubscribe ended before every handler finished", "topic", s.o.Topic, "queue", s.o.Queue, "err", ctx.Err())
	}
	s.hcancel()
	if s.broadcast {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := s.b.c.SubscriptionAdminClient.DeleteSubscription(dctx, &pubsubpb.DeleteSubscriptionRequest{Subscription: s.b.subName(s.id)})
		cancel()
		if err != nil && status.Code(err) != codes.NotFound {
			rerr = errors.Join(rerr, fmt.Errorf("gcppubsub: delete subscription %q: %w", s.id, err))
		}
	}
	return rerr
}
