package sqs

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/herald-dev/herald/broker"
)

// SQS limits.
const (
	maxBatch      = 10               // messages per ReceiveMessage and per batch call
	maxVisibility = 12 * time.Hour   // a visibility timeout, and a message's time in flight
	apiTimeout    = 10 * time.Second // bounds one call made outside a caller's context
	// prefetch is how many messages a subscriber holds received but not
	// started, beyond its handlers: one receive's worth.
	prefetch = maxBatch
	// deleteLinger is how long an acknowledgement waits for others to be
	// deleted with it in one call.
	deleteLinger = 5 * time.Millisecond
)

// Subscribe starts delivering the messages of topic to h, creating the SNS
// topic when it does not exist. With [broker.Queue] it uses the group's
// queue, "<prefix><topic>-<queue>-<hash>", creating it and its subscription
// to the topic (raw message delivery) when missing: the queue is durable and
// shared by every member. Without, it creates a queue of its own, subscribed
// to the topic and deleted by Unsubscribe. Messages published after
// Subscribe returns are delivered.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	o, err := broker.NewSubscribeOptions(topic, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("sqs: subscribe %q: %w", topic, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqs: subscribe %q: %w", topic, err)
	}
	if b.isClosed() {
		return nil, fmt.Errorf("sqs: subscribe %q: %w", topic, broker.ErrClosed)
	}
	s := newSubscription(b, h, o)
	if err := s.setUp(ctx); err != nil {
		s.tearDown(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("sqs: subscribe %q: %w", topic, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.tearDown(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("sqs: subscribe %q: %w", topic, broker.ErrClosed)
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	s.start()
	return s, nil
}

// subscription is one Subscribe: a queue, a poller that receives up to 10
// messages whenever it has room for them, Concurrency workers that run the
// handler, a keeper that extends the visibility of the messages in hand,
// and a deleter that acknowledges in batches.
type subscription struct {
	b         *Broker
	h         broker.Handler
	o         *broker.SubscribeOptions
	broadcast bool
	queue     string // name
	queueURL  string
	subARN    string // the SNS subscription, for a broadcast subscriber
	vis       time.Duration

	hctx    context.Context // the handlers'; cancelled when Unsubscribe gives up on them
	hcancel context.CancelFunc
	stop    chan struct{} // closed when Unsubscribe starts
	ready   chan *held    // received, waiting for a worker
	acks    chan string   // receipts to delete
	ackMu   sync.RWMutex  // guards the closing of acks
	noAcks  bool          // acks is closed

	mu       sync.Mutex
	room     *sync.Cond // signals a message leaving the hand, or stopping
	stopping bool
	inHand   map[string]*held // by receipt handle: ready, running or delayed

	workers   sync.WaitGroup
	helpers   sync.WaitGroup // keeper and deleter
	unsubOnce sync.Once
}

// held is a message in hand.
type held struct {
	msg       sqstypes.Message
	receipt   string
	visibleAt time.Time   // when SQS makes it visible again unless extended
	timer     *time.Timer // a short redelivery delay being waited out
}

func newSubscription(b *Broker, h broker.Handler, o *broker.SubscribeOptions) *subscription {
	vis := (min(max(o.AckWait, time.Second), maxVisibility) + time.Second - 1).Truncate(time.Second)
	s := &subscription{
		b: b, h: h, o: o,
		broadcast: o.Queue == "",
		vis:       vis,
		stop:      make(chan struct{}),
		ready:     make(chan *held, o.Concurrency+prefetch),
		acks:      make(chan string, 4*maxBatch),
		inHand:    map[string]*held{},
	}
	s.room = sync.NewCond(&s.mu)
	if s.broadcast {
		s.queue = b.broadcastQueueName(o.Topic)
	} else {
		s.queue = b.groupQueueName(o.Topic, o.Queue)
	}
	s.hctx, s.hcancel = context.WithCancel(context.Background())
	return s
}

func (s *subscription) start() {
	for range s.o.Concurrency {
		s.workers.Go(s.work)
	}
	s.helpers.Go(s.keep)
	s.helpers.Go(s.deleteLoop)
	go s.poll()
}

// Topic is the topic subscribed to.
func (s *subscription) Topic() string { return s.o.Topic }

// Queue is the queue group joined, or "" for a broadcast subscriber.
func (s *subscription) Queue() string { return s.o.Queue }

// poll receives messages while the subscription has room for them (its
// handlers and 10 more), long polling, and queues them for the workers.
//
// Unsubscribe does not cancel a receive in flight: SQS would still take the
// messages it was about to return and hide them for the visibility timeout.
// The receive ends (at once when messages come, or after the wait) and the
// messages it returns are given back.
func (s *subscription) poll() {
	limit := s.o.Concurrency + prefetch
	for wait := 100 * time.Millisecond; ; {
		s.mu.Lock()
		for !s.stopping && len(s.inHand) >= limit {
			s.room.Wait()
		}
		n, stopping := min(maxBatch, limit-len(s.inHand)), s.stopping
		s.mu.Unlock()
		if stopping {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.b.cfg.waitTime+apiTimeout)
		out, err := s.b.sqs.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(s.queueURL),
			MaxNumberOfMessages:         int32(n),
			WaitTimeSeconds:             int32(s.b.cfg.waitTime / time.Second),
			VisibilityTimeout:           int32(s.vis / time.Second),
			MessageAttributeNames:       []string{attrName},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount, sqstypes.MessageSystemAttributeNameSentTimestamp},
		})
		cancel()
		received := time.Now()
		if err != nil {
			if s.isStopping() {
				return
			}
			s.o.Logger.Warn("sqs: receive", "topic", s.o.Topic, "queue", s.queue, "err", err)
			select {
			case <-time.After(wait):
			case <-s.stop:
				return
			}
			wait = min(2*wait, 5*time.Second)
			continue
		}
		wait = 100 * time.Millisecond
		var back []string
		s.mu.Lock()
		for _, msg := range out.Messages {
			hm := &held{msg: msg, receipt: aws.ToString(msg.ReceiptHandle), visibleAt: received.Add(s.vis)}
			if s.stopping {
				back = append(back, hm.receipt)
				continue
			}
			s.inHand[hm.receipt] = hm
			s.ready <- hm // never blocks: the channel holds the limit
		}
		s.mu.Unlock()
		s.setVisibility(back, 0)
	}
}

func (s *subscription) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

// work runs the handler on queued messages until the subscription stops.
func (s *subscription) work() {
	for {
		select {
		case <-s.stop:
			return
		case hm := <-s.ready:
			if s.isStopping() {
				s.settle(hm, func(r string) { s.setVisibility([]string{r}, 0) })
				continue
			}
			s.run(hm)
		}
	}
}

// run handles one message and settles it by the decision.
func (s *subscription) run(hm *held) {
	m := s.message(hm.msg)
	d := broker.Process(s.hctx, s.h, m, s.o)
	switch d.Action {
	case broker.Ack:
		s.settle(hm, s.ack)
		return
	case broker.DeadLetter:
		if s.deadLetter(m, d.Err) {
			s.settle(hm, s.ack)
			return
		}
		d.Delay = s.o.Backoff.Delay(m.Attempt)
	}
	s.retry(hm, d.Delay)
}

// message turns msg into the message a handler gets.
func (s *subscription) message(msg sqstypes.Message) *broker.Message {
	m := &broker.Message{Topic: s.o.Topic, Attempt: 1}
	body := aws.ToString(msg.Body)
	if a, ok := msg.MessageAttributes[attrName]; ok {
		var err error
		m.ID, m.Header, m.Body, err = decode(body, aws.ToString(a.StringValue))
		if err != nil {
			s.o.Logger.Warn("sqs: damaged message attribute", "topic", s.o.Topic, "sqs_id", aws.ToString(msg.MessageId), "err", err)
		}
	} else {
		m.Body = []byte(body) // published by something other than Herald
	}
	if m.ID == "" {
		m.ID = aws.ToString(msg.MessageId)
	}
	if n, err := strconv.Atoi(msg.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil && n > 0 {
		m.Attempt = n
	}
	if ms, err := strconv.ParseInt(msg.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		m.PublishedAt = time.UnixMilli(ms)
	}
	return m
}

// deadLetter publishes the dead letter of m and reports whether SNS took it.
func (s *subscription) deadLetter(m *broker.Message, reason error) bool {
	ctx, cancel := context.WithTimeout(s.hctx, s.b.cfg.publishTimeout)
	defer cancel()
	if err := s.b.publish(ctx, s.o.DeadLetterTopic, broker.NewDeadLetter(m, s.o, reason)); err != nil {
		s.o.Logger.Warn("sqs: dead letter not published; the message will be retried", "topic", s.o.Topic, "msg_id", m.ID, "attempt", m.Attempt, "err", err)
		return false
	}
	return true
}

// retry makes the message visible again after delay. A delay of a second or
// more is the message's visibility timeout, rounded up to whole seconds
// (SQS's unit), so SQS keeps it meanwhile. A shorter one is waited out here,
// the message kept invisible by the keeper, and then its timeout set to 0.
func (s *subscription) retry(hm *held, delay time.Duration) {
	if delay >= time.Second && s.hctx.Err() == nil {
		secs := min((delay+time.Second-1)/time.Second, maxVisibility/time.Second-1)
		s.settle(hm, func(r string) { s.setVisibility([]string{r}, int32(secs)) })
		return
	}
	s.mu.Lock()
	if _, ok := s.inHand[hm.receipt]; ok && !s.stopping && delay > 0 && s.hctx.Err() == nil {
		hm.timer = time.AfterFunc(delay, func() { s.settle(hm, s.giveBack) })
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.settle(hm, s.giveBack)
}

// settle takes hm out of the hand and, if it was there, does do with its
// receipt: only one of its worker, its delay's timer and Unsubscribe settles
// a message.
func (s *subscription) settle(hm *held, do func(receipt string)) {
	s.mu.Lock()
	_, ok := s.inHand[hm.receipt]
	delete(s.inHand, hm.receipt)
	s.room.Broadcast()
	s.mu.Unlock()
	if !ok {
		return
	}
	if hm.timer != nil {
		hm.timer.Stop()
	}
	do(hm.receipt)
}

func (s *subscription) giveBack(receipt string) { s.setVisibility([]string{receipt}, 0) }

// ack queues receipt for deletion, or once the deleter has stopped (a
// handler that finished after Unsubscribe gave up on it) deletes it now.
func (s *subscription) ack(receipt string) {
	s.ackMu.RLock()
	defer s.ackMu.RUnlock()
	if s.noAcks {
		s.deleteBatch([]string{receipt})
		return
	}
	s.acks <- receipt
}

// deleteLoop deletes acknowledged messages, up to 10 a call, waiting
// deleteLinger for others to join the first. It returns once the acks
// channel is closed and drained.
func (s *subscription) deleteLoop() {
	for {
		first, ok := <-s.acks
		if !ok {
			return
		}
		batch := []string{first}
		linger := time.NewTimer(deleteLinger)
	gather:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-s.acks:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			case <-linger.C:
				break gather
			}
		}
		linger.Stop()
		s.deleteBatch(batch)
	}
}

func (s *subscription) deleteBatch(receipts []string) {
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(receipts))
	for i, r := range receipts {
		entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	out, err := s.b.sqs.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(s.queueURL), Entries: entries})
	switch {
	case err != nil:
		s.o.Logger.Warn("sqs: delete messages; they will be delivered again", "topic", s.o.Topic, "queue", s.queue, "count", len(receipts), "err", err)
	case len(out.Failed) > 0:
		s.o.Logger.Warn("sqs: delete messages; they will be delivered again", "topic", s.o.Topic, "queue", s.queue, "count", len(out.Failed), "err", aws.ToString(out.Failed[0].Message))
	}
}

// keep extends the visibility timeout of the messages in hand (ready,
// running or waiting out a short delay) that would become visible within
// half a timeout, so that a live subscriber keeps them however long they
// wait or run.
func (s *subscription) keep() {
	t := time.NewTicker(max(s.vis/4, 200*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		var due []*held
		s.mu.Lock()
		for _, hm := range s.inHand {
			if hm.visibleAt.Sub(now) < s.vis/2 {
				due = append(due, hm)
			}
		}
		s.mu.Unlock()
		for len(due) > 0 {
			n := min(len(due), maxBatch)
			s.extend(due[:n], now)
			due = due[n:]
		}
	}
}

// extend sets the visibility timeout of hms back to a full one.
func (s *subscription) extend(hms []*held, at time.Time) {
	entries := make([]sqstypes.ChangeMessageVisibilityBatchRequestEntry, len(hms))
	for i, hm := range hms {
		entries[i] = sqstypes.ChangeMessageVisibilityBatchRequestEntry{
			Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(hm.receipt), VisibilityTimeout: int32(s.vis / time.Second),
		}
	}
	ctx, cancel := context.WithTimeout(s.hctx, apiTimeout)
	defer cancel()
	out, err := s.b.sqs.ChangeMessageVisibilityBatch(ctx, &awssqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(s.queueURL), Entries: entries})
	if err != nil {
		if s.hctx.Err() == nil {
			s.o.Logger.Warn("sqs: extend visibility", "topic", s.o.Topic, "queue", s.queue, "err", err)
		}
		return
	}
	failed := map[string]bool{}
	for _, f := range out.Failed {
		failed[aws.ToString(f.Id)] = true
	}
	s.mu.Lock()
	for i, hm := range hms {
		if !failed[strconv.Itoa(i)] {
			hm.visibleAt = at.Add(s.vis)
		}
	}
	s.mu.Unlock()
}

// setVisibility sets the visibility timeout of receipts to secs.
func (s *subscription) setVisibility(receipts []string, secs int32) {
	for len(receipts) > 0 {
		n := min(len(receipts), maxBatch)
		entries := make([]sqstypes.ChangeMessageVisibilityBatchRequestEntry, n)
		for i, r := range receipts[:n] {
			entries[i] = sqstypes.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r), VisibilityTimeout: secs}
		}
		receipts = receipts[n:]
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		out, err := s.b.sqs.ChangeMessageVisibilityBatch(ctx, &awssqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(s.queueURL), Entries: entries})
		cancel()
		switch {
		case err != nil:
			s.o.Logger.Warn("sqs: change visibility; the messages come back at their visibility timeout", "topic", s.o.Topic, "queue", s.queue, "err", err)
		case len(out.Failed) > 0:
			s.o.Logger.Warn("sqs: change visibility; the messages come back at their visibility timeout", "topic", s.o.Topic, "queue", s.queue, "count", len(out.Failed), "err", aws.ToString(out.Failed[0].Message))
		}
	}
}

// Unsubscribe stops receiving, gives back at once the messages received but
// not started and those waiting out a redelivery's delay, waits for the
// handlers in flight (bounded by ctx), deletes what they acknowledged, and
// removes a broadcast subscriber's queue and its subscription. When ctx ends
// first, the handlers' context is cancelled, their messages are made visible
// again (another member gets them, with Attempt one higher) and the error
// wraps ctx.Err(). Calls after the first return nil.
func (s *subscription) Unsubscribe(ctx context.Context) error {
	var err error
	s.unsubOnce.Do(func() { err = s.unsubscribe(ctx) })
	return err
}

func (s *subscription) unsubscribe(ctx context.Context) error {
	s.b.forget(s)
	s.mu.Lock()
	s.stopping = true
	s.room.Broadcast()
	s.mu.Unlock()
	close(s.stop)
	s.giveBackWaiting()
	idle := make(chan struct{})
	go func() {
		s.workers.Wait()
		close(idle)
	}()
	var rerr error
	select {
	case <-idle:
	case <-ctx.Done():
		s.hcancel()
		rerr = fmt.Errorf("sqs: unsubscribe %q: handlers still running: %w", s.o.Topic, ctx.Err())
		s.o.Logger.Warn("sqs: unsubscribe ended before every handler finished", "topic", s.o.Topic, "queue", s.o.Queue, "err", ctx.Err())
	}
	// Everything still in hand now is running past ctx: give it back.
	s.giveBackWaiting()
	s.hcancel()
	s.mu.Lock()
	rest := make([]*held, 0, len(s.inHand))
	for _, hm := range s.inHand {
		rest = append(rest, hm)
	}
	s.mu.Unlock()
	for _, hm := range rest {
		s.settle(hm, s.giveBack)
	}
	s.ackMu.Lock()
	s.noAcks = true
	close(s.acks)
	s.ackMu.Unlock()
	s.helpers.Wait()
	s.tearDown(ctx)
	return rerr
}

// giveBackWaiting makes the messages received but not started, and those
// waiting out a short delay, visible again.
func (s *subscription) giveBackWaiting() {
	var back []*held
	for {
		select {
		case hm := <-s.ready:
			back = append(back, hm)
			continue
		default:
		}
		break
	}
	s.mu.Lock()
	for _, hm := range s.inHand {
		if hm.timer != nil {
			back = append(back, hm)
		}
	}
	s.mu.Unlock()
	var receipts []string
	for _, hm := range back {
		s.settle(hm, func(r string) { receipts = append(receipts, r) })
	}
	s.setVisibility(receipts, 0)
}

// tearDown removes a broadcast subscriber's subscription and queue.
func (s *subscription) tearDown(ctx context.Context) {
	if !s.broadcast {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
	defer cancel()
	if s.subARN != "" {
		if _, err := s.b.sns.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(s.subARN)}); err != nil {
			s.o.Logger.Warn("sqs: remove broadcast subscription", "topic", s.o.Topic, "err", err)
		}
	}
	if s.queueURL != "" {
		if _, err := s.b.sqs.DeleteQueue(ctx, &awssqs.DeleteQueueInput{QueueUrl: aws.String(s.queueURL)}); err != nil {
			s.o.Logger.Warn("sqs: delete broadcast queue", "topic", s.o.Topic, "queue", s.queue, "err", err)
		}
	}
}
