// Package mem is an in-process [registry.Registry]: the registrations live in
// a [Store] in memory, shared by the clients ([Registry] values) of one
// process. It suits tests and a single binary that runs every service
// (herald up); it is not visible to other processes.
//
// # Leases
//
// Registrations are leases as in every Herald registry: a registered
// instance stays listed while its client renews it (a heartbeat every third
// of its TTL) and is removed by the store, with a Removed event to the
// watchers, once its TTL has passed without a renewal. [Registry.Kill]
// stops a client's heartbeats without deregistering, as a crashed process
// would, so that expiry can be tested.
//
// # Records
//
// [Registry.Record] lists an instance with no lease (see
// [registry.Recorder]): it stays in the store, through the Close and Kill
// of the client that recorded it, until a Deregister by any client of the
// store. A store lives as long as its process, so records do too.
//
// # URLs
//
// "mem://" opens a client of a new, empty store (see [OpenURL]); programs
// that want several clients on one store call [New] with [WithStore].
package mem
