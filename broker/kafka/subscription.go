package kafka

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// subscription is one Subscribe: a franz-go consumer, a queue of fetched
// records, and Concurrency workers that run the handler.
//
// Records are queued in the order fetched. Records of one partition with the
// same key run one after the other; others run in parallel, up to
// Concurrency. For a queue group, each partition tracks its records in
// offset order and the committed offset is the first one not done with, so
// that nothing is committed before its handler acknowledged it (or its
// redelivery or dead letter was produced).
type subscription struct {
	b          *Broker
	h          broker.Handler
	o          *broker.SubscribeOptions
	group      string // Kafka group ID; "" for a broadcast subscriber
	retryTopic string // "" for a broadcast subscriber
	cl         *kgo.Client

	ctx      context.Context // the handlers'; cancelled when Unsubscribe gives up on them
	cancel   context.CancelFunc
	pollCtx  context.Context
	stopPoll context.CancelFunc

	mu        sync.Mutex
	cond      *sync.Cond // signals a change to ready, room, running or stopping
	parts     map[tp]*part
	ready     []*item // runnable, in fetch order
	keyQueued int     // records waiting behind a record of the same key
	waiting   int     // redeliveries waiting for their time
	running   map[*item]struct{}
	stopping  bool

	pauseMu sync.Mutex
	paused  bool

	commitMu      sync.Mutex // one commit at a time
	commitNow     chan struct{}
	stopCommits   chan struct{}
	committerDone chan struct{}

	hasParts     chan struct{} // closed when a queue-group member first gets partitions
	hasPartsOnce sync.Once

	workers   sync.WaitGroup
	pollDone  chan struct{}
	unsubOnce sync.Once
}

func newSubscription(b *Broker, h broker.Handler, o *broker.SubscribeOptions) *subscription {
	s := &subscription{
		b: b, h: h, o: o,
		parts:         map[tp]*part{},
		running:       map[*item]struct{}{},
		commitNow:     make(chan struct{}, 1),
		stopCommits:   make(chan struct{}),
		committerDone: make(chan struct{}),
		hasParts:      make(chan struct{}),
		pollDone:      make(chan struct{}),
	}
	if o.Queue != "" {
		s.group = groupID(o.Topic, o.Queue)
		s.retryTopic = retryTopic(o.Topic, o.Queue)
	}
	s.cond = sync.NewCond(&s.mu)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.pollCtx, s.stopPoll = context.WithCancel(context.Background())
	return s
}

// tp names a partition.
type tp struct {
	topic     string
	partition int32
}

// item is one fetched record on its way to the handler.
type item struct {
	p       *part
	d       delivery
	key     string // serialised with other records of its key; "" for none
	attempt int    // a broadcast subscriber's redelivery: its attempt
	done    bool
}

// keyQueue holds the records waiting for the one of their key that runs.
type keyQueue struct{ items []*item }

// part is the subscription's state of one partition it owns.
type part struct {
	tp
	revoked bool // no longer owned: its records are dropped and nothing is committed
	running int  // records being handled
	keys    map[string]*keyQueue

	pending   []*item // tracked records, in offset order, from the first not done
	commitTo  int64   // the offset to commit: all before it are done; -1 if none
	epoch     int32   // leader epoch of the last record done
	committed int64   // the offset last committed; -1 if none
}

func newPart(k tp) *part {
	return &part{tp: k, keys: map[string]*keyQueue{}, commitTo: -1, committed: -1, epoch: -1}
}

// track appends it to the records whose offsets wait to be committed.
func (p *part) track(it *item) { p.pending = append(p.pending, it) }

// complete marks it done and reports whether the offset to commit moved.
func (p *part) complete(it *item) bool {
	it.done = true
	moved := false
	for len(p.pending) > 0 && p.pending[0].done {
		r := p.pending[0].d.rec
		p.commitTo, p.epoch = r.Offset+1, r.LeaderEpoch
		p.pending[0] = nil
		p.pending = p.pending[1:]
		moved = true
	}
	return moved
}

// assigned is the group's OnPartitionsAssigned: it starts tracking the new
// partitions.
func (s *subscription) assigned(_ context.Context, _ *kgo.Client, added map[string][]int32) {
	s.mu.Lock()
	n := 0
	for t, ps := range added {
		for _, p := range ps {
			k := tp{t, p}
			if s.parts[k] == nil {
				s.parts[k] = newPart(k)
			}
			n++
		}
	}
	s.mu.Unlock()
	if n > 0 {
		s.hasPartsOnce.Do(func() { close(s.hasParts) })
	}
}

// revoked is the group's OnPartitionsRevoked: it stops the partitions'
// queued records, waits for their running handlers (up to the revoke grace,
// unless the subscription is leaving), and commits what is done, so that the
// next owner starts after it.
func (s *subscription) revoked(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	parts := s.drop(lost)
	if len(parts) == 0 {
		return
	}
	s.mu.Lock()
	if !s.stopping {
		deadline := time.Now().Add(s.b.cfg.revokeGrace)
		t := time.AfterFunc(s.b.cfg.revokeGrace, func() {
			s.mu.Lock()
			s.cond.Broadcast()
			s.mu.Unlock()
		})
		for busy(parts) && time.Now().Before(deadline) {
			s.cond.Wait()
		}
		t.Stop()
		if busy(parts) {
			s.o.Logger.Warn("kafka: partitions revoked with handlers still running; their messages go to the next owner again", "topic", s.o.Topic, "queue", s.o.Queue)
		}
	}
	s.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.commit(cctx, parts); err != nil {
		s.o.Logger.Warn("kafka: commit on revoke", "topic", s.o.Topic, "queue", s.o.Queue, "err", err)
	}
}

// lost is the group's OnPartitionsLost: the partitions are gone without a
// chance to commit.
func (s *subscription) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.drop(lost)
}

// drop stops tracking the partitions of ps and returns their states.
func (s *subscription) drop(ps map[string][]int32) []*part {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*part
	for t, list := range ps {
		for _, n := range list {
			k := tp{t, n}
			p := s.parts[k]
			if p == nil {
				continue
			}
			delete(s.parts, k)
			p.revoked = true
			for _, kq := range p.keys {
				s.keyQueued -= len(kq.items)
			}
			p.keys = nil
			out = append(out, p)
		}
	}
	if len(out) > 0 {
		kept := s.ready[:0]
		for _, it := range s.ready {
			if s.parts[it.p.tp] == it.p {
				kept = append(kept, it)
			}
		}
		clear(s.ready[len(kept):])
		s.ready = kept
		s.cond.Broadcast()
	}
	return out
}

func busy(parts []*part) bool {
	for _, p := range parts {
		if p.running > 0 {
			return true
		}
	}
	return false
}

// commitLoop commits the done offsets of the owned partitions whenever they
// move, one commit at a time.
func (s *subscription) commitLoop() {
	defer close(s.committerDone)
	for {
		select {
		case <-s.stopCommits:
			return
		case <-s.commitNow:
		}
		s.mu.Lock()
		parts := make([]*part, 0, len(s.parts))
		for _, p := range s.parts {
			parts = append(parts, p)
		}
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		if err := s.commit(ctx, parts); err != nil && s.ctx.Err() == nil {
			s.o.Logger.Warn("kafka: commit", "topic", s.o.Topic, "queue", s.o.Queue, "err", err)
		}
		cancel()
	}
}

// commit commits the offsets of parts that moved since their last commit.
// Revoked parts are committed only by the revoke itself (parts given by it),
// never after.
func (s *subscription) commit(ctx context.Context, parts []*part) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	offs := map[string]map[int32]kgo.EpochOffset{}
	want := map[*part]int64{}
	s.mu.Lock()
	for _, p := range parts {
		if p.commitTo <= p.committed {
			continue
		}
		if offs[p.topic] == nil {
			offs[p.topic] = map[int32]kgo.EpochOffset{}
		}
		offs[p.topic][p.partition] = kgo.EpochOffset{Epoch: p.epoch, Offset: p.commitTo}
		want[p] = p.commitTo
	}
	s.mu.Unlock()
	if len(offs) == 0 {
		return nil
	}
	var cerr error
	s.cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		cerr = commitError(resp)
	})
	if cerr != nil {
		return cerr
	}
	s.mu.Lock()
	for p, off := range want {
		p.committed = max(p.committed, off)
	}
	s.mu.Unlock()
	return nil
}

// commitError returns the first partition error of a commit response.
func commitError(resp *kmsg.OffsetCommitResponse) error {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}
