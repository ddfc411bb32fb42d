// Package etcd is a [registry.Registry] on etcd, through the official client
// go.etcd.io/etcd/client/v3.
//
// Each instance is one key, <prefix><service>/<id> (the prefix is
// [DefaultPrefix], "/herald/registry/", unless [WithPrefix] says otherwise),
// holding the instance as JSON. Service names and IDs cannot contain '/', so
// the listing of a service never includes another service's keys.
//
// # Leases
//
// Every registration is attached to an etcd lease of its TTL, rounded up to
// whole seconds (etcd counts in seconds, and raises a TTL below its own
// minimum, about 2s on a default server, to that minimum). The client renews
// the lease with KeepAlive; when a renewal fails for good (the lease expired
// while etcd was unreachable), the registration is put again on a new lease.
// A process that dies stops renewing, and etcd deletes its keys when the
// lease runs out: watchers see the instance Removed. [Registry.Close]
// revokes the leases of what the client registered, which removes them at
// once. [Registry.Kill] drops the client without revoking, as a crash would.
//
// # Records
//
// [Registry.Record] (see [registry.Recorder]) puts the instance's key with
// no lease: etcd keeps it until a Deregister, by any client, deletes it.
//
// # Watch
//
// [Registry.Watch] reads the service's keys and then watches them from the
// revision read, so no change falls between the listing and the watch. A
// put that does not change the instance (a registration repeated with the
// same address and metadata, or moved to a new lease) is not reported. When
// etcd compacts the history a watch needs, or the watch breaks, it reads the
// listing again and reports the difference.
//
// # URLs
//
// [OpenURL] opens "etcd://host:port" (several endpoints separated by commas:
// "etcd://10.0.0.1:2379,10.0.0.2:2379"), with "etcd://user:password@host:port"
// for etcd's authentication. Query parameters: "prefix" (the key prefix,
// ending in '/') and "dial_timeout" (a Go duration, default 5s). Other
// parameters are errors. For TLS, build a *clientv3.Client yourself and call
// [New] with [WithClient].
package etcd
