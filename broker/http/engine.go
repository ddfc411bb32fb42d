package httpbroker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// opKind is what an [op] does to the spool.
type opKind uint8

const (
	opPublish opKind = iota // add messages for the topic's targets
	opAck                   // a delivery was acknowledged: delete it
	opRetry                 // store a delivery's attempts and due time
	opDrop                  // delete a target and its messages
	opGroup                 // remember a queue group
	opForget                // forget a queue group and delete its messages
	opRelease               // hand held dead letters to the topic's groups
)

// op is one change to the spool. Those submitted through Broker.submit
// (publishes, and the groups that Subscribe, DeclareGroup and ForgetGroup
// record or forget) wait for their commit; the others (engine.async) are
// applied with the next commit.
type op struct {
	kind     opKind
	topic    string
	msgs     [][]byte // opPublish: stored messages
	hold     bool     // opPublish: hold when the topic has no subscriber
	target   string
	seq      uint64
	attempts uint32
	due      int64
	group    string
	done     chan error // submitted ops: the commit's outcome
}

// maxRound bounds the ops of one commit.
const maxRound = 4096

// lazyCommit is how long acknowledgements and retries may wait for a
// commit when no publish comes to carry them.
const lazyCommit = 10 * time.Millisecond

// engine is the publisher's spool and the lanes delivering it. A broker has
// one engine from New to Close (tests swap it to simulate a crash).
type engine struct {
	b  *Broker
	sp *spool

	ctx    context.Context // ends the lanes and their requests
	cancel context.CancelFunc
	lanes  sync.WaitGroup

	mu      sync.Mutex
	targets map[string]*target
	byTopic map[string]map[string]*target

	laterMu sync.Mutex
	later   []*op
	kick    chan struct{}

	quit      chan struct{}
	crash     bool
	prepared  chan prepared // gatherer → committer
	gathered  chan struct{} // closed when every gatherer has stopped
	gatherers sync.WaitGroup
	committed chan struct{} // closed when the committer has stopped
}

// startEngine opens the spool, loads what waits in it and starts the
// committer. Lanes start as the routes of the loaded topics are learnt.
func startEngine(b *Broker) (*engine, error) {
	sp, err := openSpool(b.cfg.spool)
	if err != nil {
		return nil, err
	}
	ld, err := sp.load()
	if err != nil {
		_ = sp.close()
		return nil, fmt.Errorf("spool: load: %w", err)
	}
	e := &engine{
		b:         b,
		sp:        sp,
		targets:   map[string]*target{},
		byTopic:   map[string]map[string]*target{},
		kick:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		prepared:  make(chan prepared),
		gathered:  make(chan struct{}),
		committed: make(chan struct{}),
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	for topic, groups := range ld.groups {
		for _, g := range groups {
			b.rememberGroup(topic, g)
		}
	}
	n := 0
	for key, es := range ld.targets {
		t := e.target(key)
		t.add(es)
		n += len(es)
		if t.kind == kindGroup {
			b.rememberGroup(t.topic, t.name)
		}
	}
	b.stats.spooled.Store(int64(n))
	for range gatherers {
		e.gatherers.Go(e.gatherLoop)
	}
	go func() { e.gatherers.Wait(); close(e.gathered) }()
	go e.commitLoop()
	return e, nil
}

// syncAll starts the routes of every topic with spooled messages and syncs
// their lanes.
func (e *engine) syncAll() {
	e.mu.Lock()
	topics := make([]string, 0, len(e.byTopic))
	for t := range e.byTopic {
		topics = append(topics, t)
	}
	e.mu.Unlock()
	for _, topic := range topics {
		e.b.route(topic)
		e.syncTopic(topic)
	}
}

// target returns the target of key, creating it.
func (e *engine) target(key string) *target {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.targetLocked(key)
}

func (e *engine) targetLocked(key string) *target {
	t := e.targets[key]
	if t == nil {
		t = newTarget(key)
		e.targets[key] = t
		ts := e.byTopic[t.topic]
		if ts == nil {
			ts = map[string]*target{}
			e.byTopic[t.topic] = ts
		}
		ts[key] = t
	}
	return t
}

// async queues an op for the next commit without waiting. It never blocks,
// so it may be called from the committer itself and under locks.
func (e *engine) async(o *op) {
	e.laterMu.Lock()
	e.later = append(e.later, o)
	e.laterMu.Unlock()
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

func (e *engine) laterLen() int {
	e.laterMu.Lock()
	defer e.laterMu.Unlock()
	return len(e.later)
}

func (e *engine) takeLater() []*op {
	e.laterMu.Lock()
	defer e.laterMu.Unlock()
	l := e.later
	e.later = nil
	return l
}

// Publishes go through a two-stage pipeline. The gatherer takes every
// publish queued, looks the topics up in the registry (so a subscription
// registered before those Publish calls is among the targets) and hands the
// round to the committer; it gathers and looks up the next round while the
// committer writes and fsyncs the previous one, so the registry's round
// trip hides behind the disk's. The committer writes a round, with the
// acknowledgements and retries queued meanwhile, in one bbolt transaction:
// concurrent publishers share an fsync (group commit).

// prepared is a round of publishes with its routes.
type prepared struct {
	ops    []*op
	routes map[string][]string // topic → target keys
	blind  map[string]bool     // topics whose subscribers could not be known
}

// errRestarting fails the publishes a simulated crash interrupts.
var errRestarting = errors.New("spool restarting")

// gatherers is how many rounds may be looked up at once: while one waits
// for the registry, the publishes that arrive meanwhile start their own
// lookup instead of waiting for the next round.
const gatherers = 4

// gatherLoop gathers publishes into rounds until the engine stops.
func (e *engine) gatherLoop() {
	for {
		var round []*op
		select {
		case o := <-e.b.ops:
			round = append(round, o)
		case <-e.quit:
			if e.crash {
				return // what is queued stays for the next engine
			}
			if round = e.drainOps(nil); len(round) == 0 {
				return
			}
		}
		p := e.prepare(e.drainOps(round))
		select {
		case e.prepared <- p:
		case <-e.quit:
			if e.crash {
				for _, o := range p.ops {
					o.done <- errRestarting
				}
				return
			}
			e.prepared <- p // a graceful stop commits it
		}
	}
}

// prepare routes every topic published to in a round.
func (e *engine) prepare(round []*op) prepared {
	p := prepared{ops: round, routes: map[string][]string{}, blind: map[string]bool{}}
	for _, o := range round {
		if o.kind != opPublish {
			continue // a group remembered or forgotten: nothing to route
		}
		if _, ok := p.routes[o.topic]; ok {
			continue
		}
		r := e.b.route(o.topic)
		r.refresh(e.ctx)
		p.routes[o.topic] = e.b.targetsOf(o.topic)
		_, synced := r.snapshot()
		p.blind[o.topic] = !synced
	}
	return p
}

// merge adds to p the other rounds ready now, so they share a commit.
func (e *engine) merge(p prepared) prepared {
	for len(p.ops) < maxRound {
		select {
		case q := <-e.prepared:
			p.ops = append(p.ops, q.ops...)
			// Each round's lookup began after its own publishes; the union
			// of the two target sets covers both rounds. (A broadcast
			// subscription one lookup no longer saw gets a target that is
			// dropped as soon as its absence is confirmed.)
			for topic, keys := range q.routes {
				old, ok := p.routes[topic]
				if !ok {
					p.routes[topic], p.blind[topic] = keys, q.blind[topic]
					continue
				}
				for _, k := range keys {
					if !slices.Contains(old, k) {
						old = append(old, k)
					}
				}
				p.routes[topic] = old
				p.blind[topic] = p.blind[topic] && q.blind[topic]
			}
		default:
			return p
		}
	}
	return p
}

// commitLoop commits the gatherers' rounds, and the acknowledgements and
// retries, until the engine stops.
func (e *engine) commitLoop() {
	defer close(e.committed)
	for {
		select {
		case p := <-e.prepared:
			e.commit(e.merge(p), e.takeLater())
		case <-e.kick:
			// Only acknowledgements and retries: they need not be on disk
			// at once (losing them in a crash means duplicates, not loss),
			// so let them gather for a moment, or ride with the next
			// publish, instead of paying an fsync each.
			if e.laterLen() < maxRound {
				t := time.NewTimer(lazyCommit)
				select {
				case p := <-e.prepared:
					t.Stop()
					e.commit(e.merge(p), e.takeLater())
					continue
				case <-t.C:
				case <-e.quit: // committed below; the loop then sees quit
				}
				t.Stop()
			}
			if later := e.takeLater(); len(later) > 0 {
				e.commit(prepared{}, later)
			}
		case <-e.quit:
			if e.crash {
				return // queued acknowledgements are lost, as in a crash
			}
			for { // graceful: commit every round the gatherer still hands over
				select {
				case p := <-e.prepared:
					e.commit(p, e.takeLater())
					continue
				case <-e.gathered:
				}
				if later := e.takeLater(); len(later) > 0 {
					e.commit(prepared{}, later)
				}
				return
			}
		}
	}
}

// drainOps adds the publishes waiting in the channel, up to maxRound.
func (e *engine) drainOps(round []*op) []*op {
	for len(round) < maxRound {
		select {
		case o := <-e.b.ops:
			round = append(round, o)
		default:
			return round
		}
	}
	return round
}

// added is what one commit added to a target.
type added struct {
	key string
	es  []*entry
}

// commit applies the publishes of p and the other ops in one
// transaction, then tells the publishers and queues the new entries for
// delivery.
func (e *engine) commit(p prepared, others []*op) {
	round := append(others, p.ops...)
	routes, blind := p.routes, p.blind
	adds := map[string]*added{}
	var released []string
	var published, acked int
	add := func(key string, en *entry) {
		a := adds[key]
		if a == nil {
			a = &added{key: key}
			adds[key] = a
		}
		a.es = append(a.es, en)
	}
	err := e.sp.db.Update(func(tx *bolt.Tx) error {
		tb, gb := tx.Bucket(bucketTargets), tx.Bucket(bucketGroups)
		for _, o := range round {
			switch o.kind {
			case opPublish:
				keys := routes[o.topic]
				// With no target, a dead letter is held for the topic's
				// future groups, and so is any message published while the
				// registry could not be read since this broker started:
				// whether the topic has a group is not known, so the
				// message is not dropped.
				if len(keys) == 0 && (o.hold || blind[o.topic]) {
					keys = []string{heldKey(o.topic)}
				}
				recs := make([][]byte, len(o.msgs))
				for i, m := range o.msgs {
					recs[i] = newRecord(m)
				}
				for _, key := range keys {
					bk, err := tb.CreateBucketIfNotExists([]byte(key))
					if err != nil {
						return err
					}
					for i, rec := range recs {
						seq, err := bk.NextSequence()
						if err != nil {
							return err
						}
						if err := bk.Put(seqKey(seq), rec); err != nil {
							return err
						}
						add(key, &entry{seq: seq, size: len(o.msgs[i])})
					}
					if kind, topic, name, _ := parseTargetKey(key); kind == kindGroup {
						if err := gb.Put(groupRecordKey(topic, name), nil); err != nil {
							return err
						}
					}
				}
				published += len(o.msgs)
			case opAck:
				if bk := tb.Bucket([]byte(o.target)); bk != nil {
					if err := bk.Delete(seqKey(o.seq)); err != nil {
						return err
					}
					acked++
				}
			case opRetry:
				if bk := tb.Bucket([]byte(o.target)); bk != nil {
					k := seqKey(o.seq)
					if v := bk.Get(k); len(v) >= recordHeader {
						nv := append([]byte(nil), v...)
						binary.BigEndian.PutUint32(nv, o.attempts)
						binary.BigEndian.PutUint64(nv[4:], uint64(o.due))
						if err := bk.Put(k, nv); err != nil {
							return err
						}
					}
				}
			case opDrop:
				if err := tb.DeleteBucket([]byte(o.target)); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
					return err
				}
			case opGroup:
				if err := gb.Put(groupRecordKey(o.topic, o.group), nil); err != nil {
					return err
				}
			case opForget:
				if err := gb.Delete(groupRecordKey(o.topic, o.group)); err != nil {
					return err
				}
				if err := tb.DeleteBucket([]byte(groupKey(o.topic, o.group))); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
					return err
				}
			case opRelease:
				ok, err := e.release(tx, o.topic, add)
				if err != nil {
					return err
				}
				if ok {
					released = append(released, o.topic)
				}
			}
		}
		return nil
	})
	// The new entries are queued (and counted) before the publishers
	// return, so what a publisher does next sees its messages.
	topics := map[string]bool{}
	if err == nil {
		for _, topic := range released {
			e.dropTarget(heldKey(topic))
		}
		n := 0
		for _, a := range adds {
			t := e.target(a.key)
			t.add(a.es)
			topics[t.topic] = true
			n += len(a.es)
		}
		e.b.stats.published.Add(uint64(published))
		e.b.stats.spooled.Add(int64(n))
	}
	for _, o := range round {
		if o.done != nil {
			o.done <- err
		}
	}
	if err != nil {
		e.b.log.Error("http broker: spool commit failed", "err", err)
		return
	}
	for topic := range topics {
		e.syncTopic(topic)
	}
}

// release moves the held dead letters of topic to every known queue group
// of it, inside tx.
func (e *engine) release(tx *bolt.Tx, topic string, add func(string, *entry)) (bool, error) {
	tb := tx.Bucket(bucketTargets)
	held := tb.Bucket([]byte(heldKey(topic)))
	groups := e.b.groupsOf(topic)
	if held == nil || len(groups) == 0 {
		return false, nil
	}
	for _, g := range groups {
		key := groupKey(topic, g)
		bk, err := tb.CreateBucketIfNotExists([]byte(key))
		if err != nil {
			return false, err
		}
		err = held.ForEach(func(_, v []byte) error {
			if len(v) < recordHeader {
				return nil
			}
			seq, err := bk.NextSequence()
			if err != nil {
				return err
			}
			if err := bk.Put(seqKey(seq), newRecord(v[recordHeader:])); err != nil {
				return err
			}
			add(key, &entry{seq: seq, size: len(v) - recordHeader})
			return nil
		})
		if err != nil {
			return false, err
		}
	}
	return true, tb.DeleteBucket([]byte(heldKey(topic)))
}

// syncTopic makes the lanes of topic's targets follow its endpoints: one
// lane per member for a group, one for a broadcast subscription's own
// endpoint; a broadcast target whose subscription is gone is dropped, held
// dead letters go to the topic's groups once it has some.
func (e *engine) syncTopic(topic string) {
	r := e.b.routeIfAny(topic)
	if r == nil {
		return
	}
	eps, synced := r.snapshot()
	var ops []*op
	e.mu.Lock()
	if e.ctx.Err() != nil {
		e.mu.Unlock()
		return
	}
	for key, t := range e.byTopic[topic] {
		want := map[string]endpoint{}
		switch t.kind {
		case kindGroup:
			for id, ep := range eps {
				if ep.queue == t.name {
					want[id] = ep
				}
			}
		case kindBroadcast:
			ep, ok := eps[t.name]
			if !ok || ep.queue != "" {
				if synced {
					e.dropLocked(t)
					ops = append(ops, &op{kind: opDrop, target: key})
				}
				continue
			}
			want[t.name] = ep
		case kindHeld:
			if e.b.hasGroups(topic) {
				ops = append(ops, &op{kind: opRelease, topic: topic})
			}
			continue
		}
		for id, l := range t.lanes {
			if ep, ok := want[id]; !ok || ep.Addr != l.ep.Addr || ep.window != l.ep.window {
				l.stop()
				delete(t.lanes, id)
			}
		}
		for id, ep := range want {
			if _, ok := t.lanes[id]; !ok {
				t.lanes[id] = e.startLane(t, ep)
			}
		}
		t.nLanes.Store(int32(len(t.lanes)))
	}
	e.mu.Unlock()
	for _, o := range ops {
		e.async(o)
	}
}

// dropTarget drops the target of key, if any.
func (e *engine) dropTarget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t := e.targets[key]; t != nil {
		e.dropLocked(t)
	}
}

func (e *engine) dropLocked(t *target) {
	n := t.pending()
	t.drop()
	for id, l := range t.lanes {
		l.stop()
		delete(t.lanes, id)
	}
	delete(e.targets, t.key)
	delete(e.byTopic[t.topic], t.key)
	if len(e.byTopic[t.topic]) == 0 {
		delete(e.byTopic, t.topic)
	}
	e.b.stats.spooled.Add(-int64(n))
}

// flush waits until no target has a message that a healthy lane could
// deliver, or ctx ends.
func (e *engine) flush(ctx context.Context) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for e.deliverable() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (e *engine) deliverable() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, t := range e.targets {
		healthy := false
		for _, l := range t.lanes {
			if l.healthy() {
				healthy = true
				break
			}
		}
		if !healthy {
			continue
		}
		t.mu.Lock()
		n += len(t.ready) + t.inflight
		t.mu.Unlock()
	}
	return n
}

// stop ends the lanes (cancelling their requests), stops the committer and
// closes the spool. A graceful stop commits what is queued first; a crash
// (tests) drops it.
func (e *engine) stop(crash bool) error {
	e.mu.Lock()
	e.cancel()
	for _, t := range e.targets {
		for _, l := range t.lanes {
			l.stop()
		}
	}
	e.mu.Unlock()
	e.lanes.Wait()
	e.crash = crash
	close(e.quit)
	<-e.gathered
	<-e.committed
	if err := e.sp.close(); err != nil {
		return fmt.Errorf("close spool: %w", err)
	}
	return nil
}
