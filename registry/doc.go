// Package registry is Herald's service discovery contract: services register
// their instances under a name ("herald.user"), clients look the name up and
// watch it for changes.
//
// Registrations are leases: an instance registered with a [TTL] stays listed
// while the registry renews it (a heartbeat every third of the TTL) and
// disappears once the heartbeats stop, so a crashed process leaves the
// listing by itself. Implementations live in sub-packages (registry/mem,
// registry/nats, registry/etcd) and are proven by registry/registrytest.
package registry
