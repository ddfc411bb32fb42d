package nats

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/herald-dev/herald/registry"
)

var _ registry.Recorder = (*Registry)(nil)

// Record writes inst's key without a TTL, so that it never expires and
// Close leaves it: only a Deregister (a purge of the key) by any client
// removes it. A registration of the same instance by r ends: its heartbeat
// stops before the write. A bucket made by someone else with a maximum age
// would drop records, so Record refuses it with [registry.ErrInvalid].
func (r *Registry) Record(ctx context.Context, inst registry.Instance) error {
	if err := registry.ValidateRecord(inst); err != nil {
		return fmt.Errorf("nats registry: record: %w", err)
	}
	inst.Metadata = maps.Clone(inst.Metadata)
	value, err := json.Marshal(inst)
	if err != nil {
		return fmt.Errorf("nats registry: record %s/%s: %w", inst.Service, inst.ID, err)
	}
	k := key(inst.Service, inst.ID)

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("nats registry: record %s/%s: %w", inst.Service, inst.ID, registry.ErrClosed)
	}
	if err := r.keepsRecords(ctx); err != nil {
		return fmt.Errorf("nats registry: record %s/%s: %w", inst.Service, inst.ID, err)
	}
	old := r.leases[k]
	if old != nil {
		old.end() // no heartbeat may rewrite the key with a TTL after the record
	}
	if _, err := r.kv.Put(ctx, k, value); err != nil {
		if old != nil { // keep the registration that was there
			r.start(k, old.restart())
		}
		return fmt.Errorf("nats registry: record %s/%s: %w", inst.Service, inst.ID, err)
	}
	delete(r.leases, k)
	r.log.Debug("registry: recorded", "service", inst.Service, "instance", inst.ID, "addr", inst.Addr)
	return nil
}

// keepsRecords checks that the bucket keeps a key without a TTL for good:
// it has no maximum age. (This registry makes its buckets without one; a
// bucket made by someone else may have it.)
func (r *Registry) keepsRecords(ctx context.Context) error {
	st, err := r.kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("bucket %q: %w", r.bucket, err)
	}
	if age := st.TTL(); age > 0 {
		return fmt.Errorf("%w: bucket %q has a maximum age of %v, so records would expire; use a bucket without one", registry.ErrInvalid, r.bucket, age)
	}
	return nil
}
