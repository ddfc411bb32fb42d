package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Subscribe starts delivering the messages of topic to h, creating the topic
// when it does not exist.
//
// With [broker.Queue] the subscription joins a Kafka consumer group (named
// "<queue>~<topic>") consuming topic and the group's retry topic, and
// returns once the group has given it partitions (or, in a group with more
// members than partitions, after the session timeout). A group that never
// committed starts at the beginning of the topic. Without a queue group it
// reads every partition of topic directly, from the end it had when
// Subscribe was called.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	o, err := broker.NewSubscribeOptions(topic, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: subscribe %q: %w", topic, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kafka: subscribe %q: %w", topic, err)
	}
	if b.isClosed() {
		return nil, fmt.Errorf("kafka: subscribe %q: %w", topic, broker.ErrClosed)
	}
	s := newSubscription(b, h, o)
	if err := s.open(ctx); err != nil {
		return nil, fmt.Errorf("kafka: subscribe %q: %w", topic, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = s.Unsubscribe(ctx)
		return nil, fmt.Errorf("kafka: subscribe %q: %w", topic, broker.ErrClosed)
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	if err := s.awaitAssignment(ctx); err != nil {
		_ = s.Unsubscribe(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("kafka: subscribe %q: %w", topic, err)
	}
	return s, nil
}

// open makes the subscription's consumer and starts its goroutines.
func (s *subscription) open(ctx context.Context) error {
	b, o := s.b, s.o
	cfg := b.cfg
	copts := b.clientOptions()
	if s.group != "" {
		if err := b.ensureTopics(ctx, o.Topic, s.retryTopic); err != nil {
			return err
		}
		copts = append(copts,
			kgo.ConsumerGroup(s.group),
			kgo.ConsumeTopics(o.Topic, s.retryTopic),
			kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(),
			kgo.BlockRebalanceOnPoll(),
			kgo.Balancers(kgo.RangeBalancer()),
			kgo.HeartbeatInterval(cfg.heartbeat),
			kgo.SessionTimeout(cfg.session),
			kgo.OnPartitionsAssigned(s.assigned),
			kgo.OnPartitionsRevoked(s.revoked),
			kgo.OnPartitionsLost(s.lost),
		)
	} else {
		if err := b.ensureTopics(ctx, o.Topic); err != nil {
			return err
		}
		ends, err := b.adm.ListEndOffsets(ctx, o.Topic)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return fmt.Errorf("list end offsets: %w", err)
		}
		start := map[int32]kgo.Offset{}
		for p, lo := range ends[o.Topic] {
			start[p] = kgo.NewOffset().At(lo.Offset)
		}
		if len(start) == 0 {
			return fmt.Errorf("topic %q has no partitions", o.Topic)
		}
		copts = append(copts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.Topic: start}))
	}
	copts = append(copts, kgo.FetchMaxWait(time.Second))
	cl, err := kgo.NewClient(append(copts, cfg.kgoOpts...)...)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	s.cl = cl
	for range o.Concurrency {
		s.workers.Go(s.work)
	}
	go s.poll()
	if s.group != "" {
		go s.commitLoop()
	} else {
		close(s.committerDone)
	}
	return nil
}

// awaitAssignment waits until a queue-group member has partitions, bounded by
// ctx and by the session timeout (a member of a group with more members than
// partitions never gets any).
func (s *subscription) awaitAssignment(ctx context.Context) error {
	if s.group == "" {
		return nil
	}
	t := time.NewTimer(s.b.cfg.session)
	defer t.Stop()
	select {
	case <-s.hasParts:
		return nil
	case <-t.C:
		s.o.Logger.Warn("kafka: joined the group without partitions", "topic", s.o.Topic, "queue", s.o.Queue)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Topic is the topic subscribed to.
func (s *subscription) Topic() string { return s.o.Topic }

// Queue is the queue group joined, or "" for a broadcast subscriber.
func (s *subscription) Queue() string { return s.o.Queue }

// Unsubscribe stops fetching, drops the records fetched but not started
// (the group fetches them again), waits for the handlers in flight (bounded
// by ctx), commits what they finished and leaves the group. When ctx ends
// first, the handlers' context is cancelled, what they had not finished is
// not committed, and the error wraps ctx.Err(). Calls after the first return
// nil.
func (s *subscription) Unsubscribe(ctx context.Context) error {
	var err error
	s.unsubOnce.Do(func() { err = s.unsubscribe(ctx) })
	return err
}

func (s *subscription) unsubscribe(ctx context.Context) error {
	s.b.forget(s)
	s.mu.Lock()
	s.stopping = true
	s.ready = nil
	s.keyQueued = 0
	for _, p := range s.parts {
		p.keys = nil
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	s.stopPoll()
	<-s.pollDone

	idle := make(chan struct{})
	go func() {
		s.workers.Wait()
		close(idle)
	}()
	var rerr error
	select {
	case <-idle:
	case <-ctx.Done():
		s.cancel()
		rerr = fmt.Errorf("kafka: unsubscribe %q: handlers still running: %w", s.o.Topic, ctx.Err())
		s.o.Logger.Warn("kafka: unsubscribe ended before every handler finished", "topic", s.o.Topic, "queue", s.o.Queue, "err", ctx.Err())
		if s.group != "" {
			s.abandon()
		}
	}
	close(s.stopCommits)
	<-s.committerDone
	if s.group != "" {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		s.mu.Lock()
		parts := make([]*part, 0, len(s.parts))
		for _, p := range s.parts {
			parts = append(parts, p)
			p.revoked = true // nothing commits after this final commit
		}
		s.mu.Unlock()
		if err := s.commit(cctx, parts); err != nil {
			s.o.Logger.Warn("kafka: final commit", "topic", s.o.Topic, "queue", s.o.Queue, "err", err)
		}
		cancel()
	}
	s.cl.CloseAllowingRebalance()
	s.cancel()
	return rerr
}

// abandon hands the records whose handlers outlived Unsubscribe's context
// to the rest of the group: each is produced to the retry topic as its next
// attempt, due at once, and counted done, so that the final commit passes it
// and another member gets it with Attempt one higher. A record whose
// redelivery cannot be produced stays uncommitted: the group gets it again,
// with the same Attempt.
func (s *subscription) abandon() {
	s.mu.Lock()
	items := make([]*item, 0, len(s.running))
	for it := range s.running {
		if !it.p.revoked {
			items = append(items, it)
		}
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, it := range items {
		m := decode(it.d.rec).msg
		rec := retryRecord(s.retryTopic, it.d.rec, m, m.Attempt+1, time.Now())
		if err := s.b.produce(ctx, s.retryTopic, []*kgo.Record{rec}); err != nil {
			s.o.Logger.Warn("kafka: abandoned delivery not handed over; the group gets it again from the last commit", "topic", s.o.Topic, "msg_id", m.ID, "err", err)
			continue
		}
		s.mu.Lock()
		it.p.complete(it)
		s.mu.Unlock()
	}
}

// poll fetches records while the subscription has room for them and queues
// them for the workers.
func (s *subscription) poll() {
	defer close(s.pollDone)
	for {
		s.mu.Lock()
		for !s.stopping && s.room() <= 0 {
			s.cond.Wait()
		}
		room := s.room()
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			return
		}
		fs := s.cl.PollRecords(s.pollCtx, room)
		if fs.IsClientClosed() || s.pollCtx.Err() != nil {
			s.cl.AllowRebalance()
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				s.o.Logger.Warn("kafka: fetch", "topic", t, "partition", p, "err", err)
			}
		})
		now := time.Now()
		s.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) { s.add(r, now) })
		s.cond.Broadcast()
		s.mu.Unlock()
		s.cl.AllowRebalance()
		s.adjustPause()
	}
}

// room is how many more records the subscription takes. s.mu is held.
func (s *subscription) room() int {
	return s.b.cfg.prefetch + s.o.Concurrency - len(s.ready) - s.keyQueued
}

// add queues a fetched record. s.mu is held.
func (s *subscription) add(r *kgo.Record, now time.Time) {
	if s.stopping {
		return
	}
	k := tp{r.Topic, r.Partition}
	p := s.parts[k]
	if p == nil {
		if s.group != "" {
			return // not ours (any more): the owner fetches it
		}
		p = newPart(k)
		s.parts[k] = p
	}
	d := decode(r)
	it := &item{p: p, d: d}
	if s.group != "" {
		p.track(it)
	}
	if d.notBefore.After(now) {
		s.wait(it, d.notBefore.Sub(now))
		return
	}
	if r.Topic != s.o.Topic {
		s.ready = append(s.ready, it) // a redelivery: no key order to keep
		return
	}
	it.key = string(r.Key)
	if kq, busy := p.keys[it.key]; busy {
		kq.items = append(kq.items, it)
		s.keyQueued++
		return
	}
	p.keys[it.key] = &keyQueue{}
	s.ready = append(s.ready, it)
}

// wait queues it once d has passed. s.mu is held.
func (s *subscription) wait(it *item, d time.Duration) {
	s.waiting++
	time.AfterFunc(d, func() {
		s.mu.Lock()
		s.waiting--
		if !s.stopping && !it.p.revoked {
			s.ready = append(s.ready, it)
			s.cond.Broadcast()
		}
		s.mu.Unlock()
		s.adjustPause()
	})
}

// adjustPause stops fetching the topic that feeds the redeliveries waiting
// for their time (the retry topic, or for a broadcast subscriber the topic
// itself) while the subscription holds as many as it prefetches, and
// resumes it below half that.
func (s *subscription) adjustPause() {
	s.pauseMu.Lock()
	defer s.pauseMu.Unlock()
	s.mu.Lock()
	waiting, stopping := s.waiting, s.stopping
	s.mu.Unlock()
	feed := s.o.Topic
	if s.group != "" {
		feed = s.retryTopic
	}
	switch {
	case stopping:
	case !s.paused && waiting >= s.b.cfg.prefetch:
		s.cl.PauseFetchTopics(feed)
		s.paused = true
	case s.paused && waiting < s.b.cfg.prefetch/2:
		s.cl.ResumeFetchTopics(feed)
		s.paused = false
	}
}

// work runs queued records until the subscription stops.
func (s *subscription) work() {
	for {
		it := s.next()
		if it == nil {
			return
		}
		done := s.handle(it)
		s.finish(it, done)
	}
}

// next takes the first queued record of a partition still owned, or returns
// nil once the subscription stops.
func (s *subscription) next() *item {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.stopping {
			return nil
		}
		for len(s.ready) > 0 {
			it := s.ready[0]
			s.ready[0] = nil
			s.ready = s.ready[1:]
			if it.p.revoked {
				continue
			}
			it.p.running++
			s.running[it] = struct{}{}
			s.cond.Broadcast() // room to poll
			return it
		}
		s.cond.Wait()
	}
}

// finish records the outcome of it: done means acknowledged, redelivered
// through the retry topic or dead-lettered, so its offset may be committed.
func (s *subscription) finish(it *item, done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := it.p
	p.running--
	delete(s.running, it)
	if done && s.group != "" && p.complete(it) && !p.revoked {
		select {
		case s.commitNow <- struct{}{}:
		default:
		}
	}
	if it.key != "" && p.keys != nil {
		if kq := p.keys[it.key]; kq != nil {
			if len(kq.items) == 0 {
				delete(p.keys, it.key)
			} else {
				next := kq.items[0]
				kq.items[0] = nil
				kq.items = kq.items[1:]
				s.keyQueued--
				if !s.stopping && !p.revoked {
					s.ready = append(s.ready, next)
				}
			}
		}
	}
	s.cond.Broadcast()
}

// handle runs the handler on it and carries out the decision. It reports
// whether the record is done with.
func (s *subscription) handle(it *item) bool {
	m := decode(it.d.rec).msg
	if it.attempt > 0 {
		m.Attempt = it.attempt
	}
	d := broker.Process(s.ctx, s.h, m, s.o)
	switch d.Action {
	case broker.Ack:
		return true
	case broker.DeadLetter:
		if s.deadLetter(it, d.Err) {
			return true
		}
		d.Delay = s.o.Backoff.Delay(m.Attempt)
	}
	if s.ctx.Err() != nil {
		return false // shutting down: the group gets it again from the last commit
	}
	return s.retry(it, m.Attempt+1, d.Delay)
}

// deadLetter publishes the dead letter of it and reports whether it was
// accepted.
func (s *subscription) deadLetter(it *item, reason error) bool {
	m := decode(it.d.rec).msg
	if it.attempt > 0 {
		m.Attempt = it.attempt
	}
	dl := broker.NewDeadLetter(m, s.o, reason)
	ctx, cancel := context.WithTimeout(s.ctx, s.b.cfg.publishTimeout)
	defer cancel()
	if err := s.b.produce(ctx, s.o.DeadLetterTopic, []*kgo.Record{newRecord(s.o.DeadLetterTopic, "", dl)}); err != nil {
		s.o.Logger.Warn("kafka: dead letter not published; the message will be retried", "topic", s.o.Topic, "msg_id", m.ID, "attempt", m.Attempt, "err", err)
		return false
	}
	return true
}

// retry redelivers it as attempt next after delay: for a queue group through
// the retry topic, so that the partition goes on; for a broadcast subscriber
// from memory. It reports whether the record is done with.
func (s *subscription) retry(it *item, next int, delay time.Duration) bool {
	if s.group == "" {
		s.mu.Lock()
		if !s.stopping {
			s.wait(&item{p: it.p, d: it.d, attempt: next}, delay)
		}
		s.mu.Unlock()
		s.adjustPause()
		return true
	}
	m := decode(it.d.rec).msg
	rec := retryRecord(s.retryTopic, it.d.rec, m, next, time.Now().Add(delay))
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(s.ctx, s.b.cfg.publishTimeout)
		err := s.b.produce(ctx, s.retryTopic, []*kgo.Record{rec})
		cancel()
		if err == nil {
			return true
		}
		if errors.Is(err, broker.ErrTooLarge) {
			return s.deadLetter(it, fmt.Errorf("retry record too large: %w", err))
		}
		s.mu.Lock()
		revoked := it.p.revoked
		s.mu.Unlock()
		if s.ctx.Err() != nil || revoked {
			return false
		}
		s.o.Logger.Warn("kafka: retry record not produced; trying again", "topic", s.o.Topic, "msg_id", m.ID, "err", err)
		select {
		case <-time.After(min(time.Duration(try)*100*time.Millisecond, 5*time.Second)):
		case <-s.ctx.Done():
			return false
		}
		rec = retryRecord(s.retryTopic, it.d.rec, m, next, time.Now().Add(delay))
	}
}
