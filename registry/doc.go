// Package registry is Herald's service discovery contract: services register
// their instances under a name ("herald.user"), clients look the name up and
// watch it for changes.
//
// Registrations are leases: an instance registered with a [TTL] stays listed
// while the registry renews it (a heartbeat every third of the TTL) and
// disappears once the heartbeats stop, so a crashed process leaves the
// listing by itself.
//
// Records are the exception, for facts that must outlive every process that
// states them: a registry that implements the optional [Recorder] lists a
// recorded instance without a lease, beside the registered ones, until a
// Deregister removes it. (The HTTP broker records its queue groups this
// way, so that a publisher started later still keeps their messages.)
//
// Implementations live in sub-packages (registry/mem, registry/nats,
// registry/etcd; each is also a Recorder) and are proven by
// registry/registrytest.
package registry
