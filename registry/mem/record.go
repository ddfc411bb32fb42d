package mem

import (
	"context"
	"fmt"

	"github.com/herald-dev/herald/registry"
)

var _ registry.Recorder = (*Registry)(nil)

// Record lists inst in the store without a lease: it stays listed after r's
// Close or Kill, for as long as the store lives, until a Deregister by any
// client of the store. A registration of the same instance by r ends: its
// heartbeat stops and Close leaves the listing in place.
func (r *Registry) Record(ctx context.Context, inst registry.Instance) error {
	if err := registry.ValidateRecord(inst); err != nil {
		return fmt.Errorf("mem: record: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: record %s/%s: %w", inst.Service, inst.ID, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("mem: record %s/%s: %w", inst.Service, inst.ID, registry.ErrClosed)
	}
	k := instanceKey{inst.Service, inst.ID}
	if l := r.leases[k]; l != nil {
		l.end()
		delete(r.leases, k)
	}
	r.store.put(inst, 0)
	r.log.Debug("registry: recorded", "service", inst.Service, "instance", inst.ID, "addr", inst.Addr)
	return nil
}
