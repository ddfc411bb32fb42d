package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/herald-dev/herald/registry"
)

var _ registry.Recorder = (*Registry)(nil)

// Record puts inst's key without a lease, so that no expiry, Close or Kill
// removes it: only a Deregister (a delete of the key) by any client does.
// A registration of the same instance by r ends: its heartbeat stops before
// the put (so no renewal can move the key back onto the lease) and its lease
// is revoked after it (which no longer holds the key).
func (r *Registry) Record(ctx context.Context, inst registry.Instance) error {
	if err := registry.ValidateRecord(inst); err != nil {
		return fmt.Errorf("etcd: record: %w", err)
	}
	inst.Metadata = maps.Clone(inst.Metadata)
	value, err := json.Marshal(inst)
	if err != nil {
		return fmt.Errorf("etcd: record %s/%s: %w", inst.Service, inst.ID, err)
	}
	r.regMu.Lock()
	defer r.regMu.Unlock()
	if err := r.check(ctx); err != nil {
		return fmt.Errorf("etcd: record %s/%s: %w", inst.Service, inst.ID, err)
	}
	k := instanceKey{inst.Service, inst.ID}
	old := r.endRegistration(k)
	if _, err := r.cli.Put(ctx, r.key(inst.Service, inst.ID), string(value)); err != nil {
		if old != nil {
			r.resume(k, old) // the registration stays as it was
		}
		return fmt.Errorf("etcd: record %s/%s: %w", inst.Service, inst.ID, err)
	}
	if old != nil {
		r.revoke(ctx, old.current())
	}
	r.log.Debug("registry: recorded", "service", inst.Service, "instance", inst.ID, "addr", inst.Addr)
	return nil
}

// resume keeps renewing the lease of a registration whose heartbeat was
// stopped, unless r closed meanwhile (the lease then runs out).
func (r *Registry) resume(k instanceKey, old *lease) {
	l := &lease{inst: old.inst, value: old.value, ttl: old.ttl, id: old.current(), done: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.leases[k] = l
	hctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.heartbeat(hctx, l)
	}()
}
