package httpbroker

import (
	"context"
	"errors"
	"fmt"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/registry"
)

// Queue groups are durable by name (see the package documentation). A
// group's existence lives in three places: the registry's group record
// (shared by every peer, kept until ForgetGroup), each publisher's memory
// (b.groups) and each publisher's spool (groups/<topic>/<group>), which
// keeps it across restarts.

// DeclareGroup makes the queue group group of topic exist before its first
// member joins, for every broker of the registry: it writes the group's
// record in the registry (see [registry.Recorder]), which a publisher finds
// in the lookup it makes before committing a publish, and remembers the
// group in this broker's spool. From the moment it returns nil, every
// publisher keeps what it publishes to topic for the group until a member
// takes it. Declaring a group that exists changes nothing. It implements
// [broker.GroupDeclarer]. With a registry that keeps no records, it returns
// an error wrapping [errors.ErrUnsupported].
func (b *Broker) DeclareGroup(ctx context.Context, topic, group string) error {
	if err := broker.ValidateGroup(topic, group); err != nil {
		return fmt.Errorf("http: declare group %q of %q: %w", group, topic, err)
	}
	if b.isClosed() {
		return fmt.Errorf("http: declare group %q of %q: %w", group, topic, broker.ErrClosed)
	}
	if _, ok := b.reg.(registry.Recorder); !ok {
		return fmt.Errorf("http: declare group %q of %q: the registry (%T) keeps no records, so other publishers could not learn the group: %w",
			group, topic, b.reg, errors.ErrUnsupported)
	}
	if err := b.recordGroup(ctx, topic, group); err != nil {
		return fmt.Errorf("http: declare group %q of %q: %w", group, topic, err)
	}
	return nil
}

// recordGroup makes group of topic exist for every peer and for this
// broker, before it returns: its record in the registry (when the registry
// keeps records; otherwise other publishers learn the group only from its
// live members), then in this broker's memory and spool, committed. A
// Publish by this broker that follows can therefore never miss the group,
// whatever its registry watches have reported.
func (b *Broker) recordGroup(ctx context.Context, topic, group string) error {
	if rec, ok := b.reg.(registry.Recorder); ok {
		if err := rec.Record(ctx, groupRecord(topic, group)); err != nil {
			return fmt.Errorf("record the group in the registry: %w", err)
		}
	}
	b.rememberGroup(topic, group)
	if err := b.submit(ctx, &op{kind: opGroup, topic: topic, group: group}); err != nil {
		return fmt.Errorf("remember the group in the spool: %w", err)
	}
	if e := b.engine(); e != nil {
		e.syncTopic(topic) // held dead letters of topic go to the group
	}
	return nil
}

// ForgetGroup deletes the queue group group of topic: its record leaves
// the registry, so publishers that do not know the group yet will not
// learn it, and this publisher forgets it: its spooled messages are
// deleted and new ones are no longer kept for it. Other publishers that
// know the group keep it (and its messages) until ForgetGroup is called on
// them too, and any publisher learns it again from a live member (whose
// next Subscribe records it again). Call it for a group that is gone for
// good.
func (b *Broker) ForgetGroup(ctx context.Context, topic, group string) error {
	if err := broker.ValidateGroup(topic, group); err != nil {
		return fmt.Errorf("http: forget group: %w", err)
	}
	e := b.engine()
	if e == nil {
		return fmt.Errorf("http: forget group %s of %q: %w", group, topic, broker.ErrClosed)
	}
	// The record first: while it is listed, this publisher's next lookup
	// would learn the group again.
	if err := b.reg.Deregister(ctx, groupRecord(topic, group)); err != nil {
		return fmt.Errorf("http: forget group %s of %q: remove its record from the registry: %w", group, topic, err)
	}
	b.mu.Lock()
	delete(b.groups[topic], group)
	b.mu.Unlock()
	e.dropTarget(groupKey(topic, group))
	if err := b.submit(ctx, &op{kind: opForget, topic: topic, group: group}); err != nil {
		return fmt.Errorf("http: forget group %s of %q: %w", group, topic, err)
	}
	return nil
}

func (b *Broker) knowsGroup(topic, group string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.groups[topic][group]
}

func (b *Broker) hasGroups(topic string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.groups[topic]) > 0
}

func (b *Broker) groupsOf(topic string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var gs []string
	for g := range b.groups[topic] {
		gs = append(gs, g)
	}
	return gs
}

// rememberGroup records that group exists on topic, and reports whether
// it is news.
func (b *Broker) rememberGroup(topic, group string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	gs := b.groups[topic]
	if gs == nil {
		gs = map[string]bool{}
		b.groups[topic] = gs
	}
	if gs[group] {
		return false
	}
	gs[group] = true
	return true
}

// learnGroup remembers a queue group seen in the registry (its record, or
// a live member), durably: from now on this publisher keeps the group's
// messages until a member takes them.
func (b *Broker) learnGroup(topic, group string) {
	if !b.rememberGroup(topic, group) {
		return
	}
	if e := b.engine(); e != nil {
		e.async(&op{kind: opGroup, topic: topic, group: group})
		e.syncTopic(topic)
	}
}
