package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// reclaim runs until the subscription stops: every AckWait/2 it takes over
// the entries of the group left pending for longer than AckWait (their
// consumer crashed or lost its connection), and every AckWait/3 it resets
// the idle time of the entries it holds, so that a slow handler keeps its
// entry (XCLAIM JUSTID, which does not count a delivery).
func (s *subscription) reclaim() {
	defer s.producers.Done()
	ackWait := s.opts.AckWait
	claimEvery := max(ackWait/2, 5*time.Millisecond)
	touchEvery := max(ackWait/3, 5*time.Millisecond)
	claim := time.NewTimer(0) // at once: a consumer may have crashed long ago
	touch := time.NewTicker(touchEvery)
	defer claim.Stop()
	defer touch.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-touch.C:
			s.touch()
		case <-claim.C:
			s.claim()
			claim.Reset(claimEvery)
		}
	}
}

// claim takes over entries pending for longer than AckWait, in both streams,
// up to the free slots, and dispatches them.
func (s *subscription) claim() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, key := range []string{s.stream, s.redo} {
		start := "0-0"
		for range 100 { // bounded: the rest waits for the next round
			free := s.free()
			if free <= 0 || s.stopping() {
				return
			}
			msgs, next, err := s.b.client.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
				Stream:   key,
				Group:    s.group,
				Consumer: s.consumer,
				MinIdle:  s.opts.AckWait,
				Start:    start,
				Count:    int64(free),
			}).Result()
			if err != nil {
				if !goredis.HasErrorPrefix(err, "NOGROUP") {
					s.opts.Logger.Debug("redis: cannot take over pending entries", "topic", s.opts.Topic, "group", s.group, "err", err)
				}
				break
			}
			if len(msgs) > 0 {
				s.dispatchClaimed(ctx, key, msgs)
			}
			if next == "0-0" || next == "" {
				break
			}
			start = next
		}
	}
}

// dispatchClaimed looks up how often each claimed entry was delivered (its
// attempt) and dispatches it. After the stop, the entries go back to the
// group at once instead.
func (s *subscription) dispatchClaimed(ctx context.Context, key string, msgs []goredis.XMessage) {
	counts := make([]*goredis.XPendingExtCmd, len(msgs))
	_, _ = s.b.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, xm := range msgs {
			counts[i] = p.XPendingExt(ctx, &goredis.XPendingExtArgs{Stream: key, Group: s.group, Start: xm.ID, End: xm.ID, Count: 1})
		}
		return nil
	})
	es := make([]*entry, 0, len(msgs))
	for i, xm := range msgs {
		count := int64(2) // it was taken over, so delivered twice at least
		if p, err := counts[i].Result(); err == nil && len(p) == 1 {
			count = p[0].RetryCount
		}
		if e := s.entry(key, xm, count); e != nil {
			es = append(es, e)
		}
	}
	if len(es) == 0 {
		return
	}
	s.opts.Logger.Info("redis: took over entries left pending", "topic", s.opts.Topic, "group", s.group, "entries", len(es))
	if s.stopping() {
		if !s.broadcast {
			s.requeue(ctx, es)
		}
		return
	}
	s.dispatch(es)
}

// touch resets the idle time of the entries the subscription holds.
func (s *subscription) touch() {
	s.mu.Lock()
	if len(s.held) == 0 {
		s.mu.Unlock()
		return
	}
	ids := map[string][]string{}
	for _, e := range s.held {
		ids[e.stream] = append(ids[e.stream], e.id)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.b.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for key, list := range ids {
			p.XClaimJustID(ctx, &goredis.XClaimArgs{Stream: key, Group: s.group, Consumer: s.consumer, MinIdle: 0, Messages: list})
		}
		return nil
	})
	if err != nil {
		s.opts.Logger.Debug("redis: cannot refresh held entries", "topic", s.opts.Topic, "group", s.group, "err", err)
	}
}

// move runs until the subscription stops, moving the group's redeliveries
// to its redo stream when they are due. It sleeps until the next one is due,
// a second at most (members of the group schedule redeliveries too), and
// wakes when this subscription schedules one.
func (s *subscription) move() {
	defer s.helpers.Done()
	const batch = 500
	ctx := context.Background()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-t.C:
		}
		wait := time.Second
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := s.b.scripts.move.Run(cctx, s.b.client, []string{s.delay, s.redo}, batch).Int64Slice()
		cancel()
		switch {
		case err != nil:
			s.opts.Logger.Debug("redis: cannot move due redeliveries", "topic", s.opts.Topic, "group", s.group, "err", err)
		case len(res) == 2 && res[0] >= batch:
			wait = 0
		case len(res) == 2 && res[1] >= 0:
			wait = min(wait, time.Duration(res[1])*time.Millisecond)
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}
