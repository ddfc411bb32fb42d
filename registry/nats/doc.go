// Package nats is a [registry.Registry] on a NATS JetStream key-value
// bucket, so that every process connected to one NATS server (or cluster)
// shares one registry.
//
// # Storage
//
// Each instance is one key of the bucket (default [DefaultBucket]), its value
// the JSON of [registry.Instance]. The key is "<service>.<instance-id>" with
// every '.' inside either name written as '=' (a byte names cannot contain):
// instance "01J9" of "herald.user" is the key "herald=user.01J9". A key thus
// always has exactly two tokens, so "<service>.*" matches the instances of
// that one service and never those of "herald.user.admin", and no two
// (service, ID) pairs share a key.
//
// # Leases
//
// A lease is a per-message TTL (nats-server 2.11 or later; the bucket is
// created with LimitMarkerTTL, which turns on per-message TTLs and makes
// the server write a delete marker when one runs out). Register writes the
// key with the TTL (rounded up to whole seconds, the server's granularity)
// and a heartbeat rewrites it every third of the TTL; the bucket keeps one
// revision per key, so the newest write's TTL is the one that counts. When
// the process dies or loses its connection, the heartbeats stop and the
// server itself removes the key once the TTL has passed, and tells the
// watchers: nothing depends on the dead process's cooperation. The
// bucket's own MaxAge is not used, so instances can have different TTLs.
//
// Deregister and Close purge the key at once (the purge marker itself
// expires after the bucket's marker TTL, so deregistered instances leave
// nothing behind).
//
// # Records
//
// [Registry.Record] (see [registry.Recorder]) writes the instance's key
// with no TTL and no heartbeat: the bucket keeps it until a Deregister, by
// any client, purges it. It refuses a bucket that has a maximum age (one
// made by someone else), which would drop records.
//
// # Watch
//
// Watch is a KV watch on "<service>.*". Its first events are the live
// instances; after that a write is Added only when the instance changed, so
// heartbeats are not news, and a delete, purge or TTL marker is Removed.
//
// # Lookup
//
// Lookup reads the instances through a KV watch, whose consumer the server
// places on any replica of the bucket; on a cluster that replica may not
// have applied the newest writes. So Lookup first asks the bucket's leader
// for the revision of the service's newest entry (a non-direct get of
// "$JS.API.STREAM.MSG.GET.KV_<bucket>", which only the leader answers) and
// reads the watch up to that revision: a lookup sees every write that had
// returned when it started. A client not allowed to publish to that
// subject, or a bucket electing its leader, gets no answer within a second;
// the lookup then reads what the replica has, and logs a warning.
//
// # Clusters
//
// On a JetStream cluster, [WithReplicas] (replicas=3 in the URL) keeps the
// bucket on three servers, so that the registry survives the loss of any
// one: the bucket's new leader is elected within seconds, and a heartbeat
// that failed meanwhile is retried at the next one (a TTL of a few
// heartbeats outlasts an election). A bucket found with fewer replicas is
// scaled up; one with more is kept.
//
// # URLs
//
// "nats://host:port?bucket=name&replicas=3" ([OpenURL]); a cluster is
// "nats://a:4222,b:4222,c:4222?replicas=3", one scheme for the list. User
// and password in the URL are passed to every server and never logged.
package nats
