package httpbroker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/registry"
)

// Registry names and metadata.
const (
	// ServicePrefix starts the registry service name of a topic's
	// subscriptions: "herald.broker." + topic (see [ServiceName]).
	ServicePrefix = "herald.broker."

	metaTopic       = "topic"
	metaQueue       = "queue"
	metaConcurrency = "concurrency"
	metaAckWait     = "ack_wait_ms"
	metaProtocol    = "protocol"
	protocolVersion = "1"
	metaRecord      = "record" // set on a group record, which is no endpoint
	recordKindGroup = "queue-group"

	// maxWindow bounds the requests in flight to one endpoint.
	maxWindow = 256
)

// ServiceName returns the registry service name under which the
// subscriptions of topic register: [ServicePrefix] + topic, or, when that is
// longer than a registry name may be, [ServicePrefix] + "h." and a hash of
// the topic. Every instance also carries the topic in its metadata.
func ServiceName(topic string) string {
	if s := ServicePrefix + topic; len(s) <= 128 {
		return s
	}
	sum := sha256.Sum256([]byte(topic))
	return ServicePrefix + "h." + hex.EncodeToString(sum[:16])
}

// groupRecord is the registry record of the queue group group of topic:
// an unleased listing (see [registry.Recorder]) under the topic's
// [ServiceName], beside its subscriptions, so that the lookup a publisher
// makes before each commit finds the topic's groups too. Its ID and address
// depend on the group alone, so every member writes the same record and
// writing it again is no news to watchers. It carries no protocol version:
// publishers never take it for an endpoint.
func groupRecord(topic, group string) registry.Instance {
	return registry.Instance{
		Service:  ServiceName(topic),
		ID:       groupRecordID(group),
		Addr:     recordKindGroup + ":" + group,
		Metadata: map[string]string{metaTopic: topic, metaQueue: group, metaRecord: recordKindGroup},
	}
}

// groupRecordID is the instance ID of a group's record: subscription IDs
// start with 's', so the two never meet.
func groupRecordID(group string) string { return "group." + group }

// parseGroupRecord reads a registry instance of topic's service; ok is
// false for an instance that is not the record of a queue group of topic.
func parseGroupRecord(topic string, inst registry.Instance) (group string, ok bool) {
	md := inst.Metadata
	if md[metaRecord] != recordKindGroup || md[metaTopic] != topic {
		return "", false
	}
	group = md[metaQueue]
	if broker.ValidateQueue(group) != nil || inst.ID != groupRecordID(group) {
		return "", false
	}
	return group, true
}

// endpoint is one live subscription as the registry lists it.
type endpoint struct {
	registry.Instance
	queue   string
	window  int           // requests in flight at once
	idle    time.Duration // how long a delivery may go without a word from it
	addedAt uint64        // route generation when it was added
}

// parseEndpoint reads a registry instance of topic's service; ok is false
// for an instance that is not a subscription of topic.
func parseEndpoint(topic string, inst registry.Instance) (endpoint, bool) {
	md := inst.Metadata
	if md[metaTopic] != topic || md[metaProtocol] != protocolVersion {
		return endpoint{}, false
	}
	ep := endpoint{Instance: inst, queue: md[metaQueue], window: 1, idle: broker.DefaultAckWait}
	if ep.queue != "" && broker.ValidateQueue(ep.queue) != nil {
		return endpoint{}, false
	}
	// As many requests in flight as the subscription runs handlers, so each
	// handler can have a delivery even when messages come one at a time;
	// one at a time for Concurrency(1) keeps a publisher's order.
	if c, err := strconv.Atoi(md[metaConcurrency]); err == nil && c > 1 {
		ep.window = min(c, maxWindow)
	}
	if ms, err := strconv.ParseInt(md[metaAckWait], 10, 64); err == nil && ms > 0 {
		ep.idle = time.Duration(ms) * time.Millisecond
	}
	ep.idle += time.Second // slack over the subscriber's keep-alive period
	return ep, true
}

// route is the publisher's view of one topic's subscriptions: a cache of
// the registry, kept by a watch and refreshed by a lookup before each commit
// of published messages, so that a subscription registered before Publish
// was called is never missed. The same listings carry the topic's group
// records, which the broker learns (durably) as it sees them.
type route struct {
	b       *Broker
	topic   string
	service string

	mu           sync.Mutex
	eps          map[string]endpoint  // by instance ID
	tomb         map[string]time.Time // instances known to be gone
	gen          uint64
	synced       bool // a lookup or watch listing has completed
	lookupFailed time.Time
}

func newRoute(b *Broker, topic string) *route {
	return &route{b: b, topic: topic, service: ServiceName(topic), eps: map[string]endpoint{}, tomb: map[string]time.Time{}}
}

// snapshot returns the live endpoints and whether the view is complete.
func (r *route) snapshot() (map[string]endpoint, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]endpoint, len(r.eps))
	for id, ep := range r.eps {
		out[id] = ep
	}
	return out, r.synced
}

// refresh looks the topic's subscriptions up and merges them into the view.
// A lookup that failed less than a second ago is not tried again: the
// cached view serves meanwhile.
func (r *route) refresh(ctx context.Context) {
	r.mu.Lock()
	if time.Since(r.lookupFailed) < time.Second {
		r.mu.Unlock()
		return
	}
	start := r.gen
	r.mu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	insts, err := r.b.reg.Lookup(lctx, r.service)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		if ctx.Err() != nil {
			return // our own cancellation (closing, restarting): not the registry's failure
		}
		r.mu.Lock()
		r.lookupFailed = time.Now()
		r.mu.Unlock()
		r.b.log.Warn("http broker: registry lookup failed; using the cached subscribers", "topic", r.topic, "err", err)
		return
	}
	r.merge(insts, start)
}

// merge applies a listing taken when the generation was start: it adds what
// it lists (unless a watch already saw it go) and removes what it does not
// list and was known before the listing began.
func (r *route) merge(insts []registry.Instance, start uint64) {
	r.mu.Lock()
	changed := false
	seen := map[string]bool{}
	var groups []string
	for _, inst := range insts {
		if g, ok := parseGroupRecord(r.topic, inst); ok {
			groups = append(groups, g)
			continue
		}
		ep, ok := parseEndpoint(r.topic, inst)
		if !ok {
			continue
		}
		seen[inst.ID] = true
		if _, gone := r.tomb[inst.ID]; gone {
			continue
		}
		changed = r.putLocked(ep) || changed
	}
	for id, ep := range r.eps {
		if !seen[id] && ep.addedAt <= start {
			r.removeLocked(id)
			changed = true
		}
	}
	first := !r.synced
	r.synced = true
	r.mu.Unlock()
	for _, g := range groups {
		r.b.learnGroup(r.topic, g)
	}
	if changed || first {
		r.b.routeChanged(r)
	}
}

func (r *route) putLocked(ep endpoint) bool {
	old, ok := r.eps[ep.ID]
	if ok && old.Addr == ep.Addr && old.queue == ep.queue && old.window == ep.window && old.idle == ep.idle {
		return false
	}
	r.gen++
	ep.addedAt = r.gen
	r.eps[ep.ID] = ep
	return true
}

func (r *route) removeLocked(id string) {
	delete(r.eps, id)
	now := time.Now()
	r.tomb[id] = now
	if len(r.tomb) > 1024 {
		for k, t := range r.tomb {
			if now.Sub(t) > 10*time.Minute {
				delete(r.tomb, k)
			}
		}
	}
}

// apply applies one watch event. A watch is authoritative: an Added event
// revives an instance a lookup or a failed delivery had given up on. A
// group record that is Added is learnt; one that is Removed (by
// [Broker.ForgetGroup] somewhere) changes nothing here: a publisher that
// knows a group keeps it until it is told to forget it.
func (r *route) apply(ev registry.Event) {
	if ev.Type == registry.Added {
		if g, ok := parseGroupRecord(r.topic, ev.Instance); ok {
			r.b.learnGroup(r.topic, g)
			return
		}
	}
	r.mu.Lock()
	changed := false
	switch ev.Type {
	case registry.Added:
		if ep, ok := parseEndpoint(r.topic, ev.Instance); ok {
			delete(r.tomb, ep.ID)
			changed = r.putLocked(ep)
		}
	case registry.Removed:
		if _, ok := r.eps[ev.Instance.ID]; ok {
			r.removeLocked(ev.Instance.ID)
			changed = true
		}
	}
	r.mu.Unlock()
	if changed {
		r.b.routeChanged(r)
	}
}

// forget drops an endpoint that answered that it has no such subscription
// (it unsubscribed and the registry has not said so yet).
func (r *route) forget(id string) {
	r.mu.Lock()
	_, ok := r.eps[id]
	if ok {
		r.removeLocked(id)
	}
	r.mu.Unlock()
	if ok {
		r.b.routeChanged(r)
	}
}

// watch keeps the view up to date until the broker closes: a lookup, then
// a registry watch, again with backoff whenever the watch ends.
func (r *route) watch(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		r.refresh(ctx)
		ch, err := r.b.reg.Watch(ctx, r.service)
		if err == nil {
			backoff = 100 * time.Millisecond
			for ev := range ch {
				r.apply(ev)
			}
		}
		if ctx.Err() != nil || errors.Is(err, registry.ErrClosed) {
			return
		}
		if err != nil {
			r.b.log.Warn("http broker: registry watch failed", "topic", r.topic, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
