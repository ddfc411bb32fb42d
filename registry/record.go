package registry

import (
	"context"
	"fmt"
)

// Recorder is an optional capability of a [Registry]: records, listings
// without a lease. Find it with a type assertion:
//
//	if rec, ok := reg.(registry.Recorder); ok { … }
//
// A registration says "this process is alive and listens here", so it
// leaves with its process. Some facts outlive every process that states
// them: that a queue group exists and its messages must be kept (Herald's
// HTTP broker records the groups of each topic this way), so that a process
// started later learns them from the registry alone. A record is such a
// fact.
//
// Implementations are safe for concurrent use. The in-tree registries
// (registry/mem, registry/nats, registry/etcd) implement it, and
// registry/registrytest proves it of any registry that does.
type Recorder interface {
	// Record lists inst without a lease. [Registry.Lookup] and
	// [Registry.Watch] of inst.Service report it like a registered
	// instance, and it stays listed, whatever becomes of the client that
	// recorded it (its Close, its crash), until a [Registry.Deregister] of
	// the same Service and ID, by any client, removes it. Recording it
	// again updates it; a record that does not change is no news to
	// watchers. Recording an instance this client registered ends that
	// registration's lease: the listing stays, as a record. inst is
	// validated as by [ValidateRecord]. After Close, the error wraps
	// [ErrClosed].
	Record(ctx context.Context, inst Instance) error
}

// ValidateRecord checks inst for [Recorder.Record] as Register checks it:
// its names (see [ValidateInstance]) and an address, which every listing
// has.
func ValidateRecord(inst Instance) error {
	if err := ValidateInstance(inst); err != nil {
		return err
	}
	if inst.Addr == "" {
		return fmt.Errorf("%w: instance %s/%s has no address", ErrInvalid, inst.Service, inst.ID)
	}
	return nil
}
