// Package httpbroker is Herald's peer-to-peer HTTP broker: Go Micro's
// default broker, in the same shape, without its losses.
//
// The package lives in the directory broker/http but is named httpbroker,
// so that neither it nor the programs that import it have to rename
// net/http.
//
// Every subscription is an HTTP endpoint of its process, registered in a
// [registry.Registry] under [ServiceName] of its topic ("herald.broker." +
// topic) with its queue group in the metadata; beside them, each queue
// group of the topic has a record there that outlives its members. A
// publisher looks the topic's subscriptions up and POSTs the messages to
// them: each message to every broadcast subscriber and to one member of
// each queue group. Unlike
// Go Micro's broker, whose Publish returns before delivery, keeps failed
// sends in a 64-message in-memory inbox and acknowledges nothing, this one:
//
//   - spools every message at the publisher, in a bbolt file, before Publish
//     returns, and removes it only once a subscriber acknowledged it;
//   - batches many messages into one request over kept-alive connections;
//   - signs every delivery with HMAC-SHA256 and a shared secret, and refuses
//     (and counts, see [Stats]) forged, altered and replayed deliveries;
//   - applies the contract's acknowledgements, retries with backoff and dead
//     letters through [broker.Process].
//
// # Delivery semantics
//
// Delivery is at least once, as the [broker] package describes, with these
// specifics.
//
// Publish commits the message to the publisher's spool (one bbolt
// transaction, fsynced; concurrent publishers share a commit) for every
// target known at that moment, and returns. Before each commit the publisher
// looks the topic's subscriptions and group records up in the registry (one
// lookup: they are listed together), so a subscription registered, or a
// group recorded, before Publish was called is never missed. A background
// sender delivers each target's messages in publish order, in batches, and
// deletes a message once its subscriber acknowledged it. A Publish whose
// context ends while it waits for the commit returns the context's error;
// the message may still have been spooled.
//
// The targets are:
//
//   - Each queue group of the topic. Queue groups are durable by name and
//     shared through the registry. Subscribe with [broker.Queue] and
//     [Broker.DeclareGroup] record the group before they return: in the
//     registry, as a listing without a lease under the topic's
//     [ServiceName] that outlives every process (see [registry.Recorder]),
//     and in the broker's own spool. A publisher learns a group from its
//     record or from a live member, in the lookup before a commit or from
//     its watch of the topic; from then on it remembers the group in its
//     spool and keeps the group's messages while the group has no live
//     member, for as long as it takes one to come back, across restarts of
//     either side. So a message is kept for every group declared or joined
//     before Publish was called: by this very broker (even one whose member
//     left at once), or by another process that has exited since, before
//     this publisher ever saw a member. A group that is gone for good is
//     deleted with [Broker.ForgetGroup]: its record leaves the registry (so
//     publishers that do not know the group will not learn it) and the
//     publisher it is called on drops the group and its messages; other
//     publishers that know the group keep it until ForgetGroup is called on
//     them too, and a live member teaches it again. A group nobody declared
//     or joined gets nothing: a message published before that is not kept
//     for it. With a registry that keeps no records (not a
//     [registry.Recorder]; mem, nats and etcd all keep them), publishers
//     learn a group from its live members only, a broker's own groups from
//     its spool, and DeclareGroup returns an error wrapping
//     [errors.ErrUnsupported].
//   - Each live broadcast subscription. Broadcast subscribers are
//     ephemeral: they get what is published while they are registered; when
//     a subscription leaves the registry (it unsubscribed, or its lease ran
//     out after a crash), its undelivered messages are dropped.
//
// A message published to a topic with no target at all is dropped, as on a
// subject nobody listens to — except a dead letter, which is held in the
// spool and handed to the first queue groups its topic gets, declared or
// joined (so a DLQ consumer that starts late still finds what failed
// meanwhile; a DLQ group already recorded takes its dead letters at once).
//
// Each delivery request carries up to 512 messages (1 MiB) of one target
// to one endpoint. The subscriber runs the handlers through
// [broker.Process], up to the subscription's [broker.Concurrency], and
// streams one result per message back as each finishes: acknowledged (also
// after a dead letter was published), retry after a delay (the publisher
// stores the next attempt number and due time in its spool and sends the
// message again then, as [broker.Message.Attempt]+1), or not run (the
// subscription was stopping). The publisher keeps up to Concurrency requests
// in flight to an endpoint (one for Concurrency(1), which keeps a
// publisher's order), so a subscription's prefetch follows its concurrency.
// A queue group's ready messages are shared among its members.
//
// The publisher keeps an index of what waits in its spool in memory (about
// 100 bytes per message and target; the messages themselves stay on disk
// until they are sent), so a backlog of millions of messages for a group
// that stays away costs hundreds of megabytes.
//
// Dead letters are published by the subscriber through its own broker: the
// dead-letter topic is a topic like any other, spooled in the subscriber's
// process, and the original is acknowledged once the dead letter is in that
// spool.
//
// AckWait: while handlers run, the subscriber sends keep-alive frames every
// third of the subscription's [broker.AckWait]; a publisher that hears
// nothing for AckWait (plus a second) gives up on the request and delivers
// its unanswered messages again, as their next attempt. A handler that runs
// long is therefore not redelivered while its process is alive and
// connected; a process that hangs or dies is. An endpoint that cannot be
// reached is retried with backoff (20ms to 2s) while its registration lasts;
// a queue group's other members take its share meanwhile.
//
// Unsubscribe and Close deregister first, answer the deliveries whose
// handlers had not started as "not run" (the publisher sends them to another
// member, or keeps them for the group), let the running handlers finish and
// send their results, bounded by the context; when the context ends first
// the running handlers are abandoned: their context is cancelled and their
// publishers deliver their messages again, as the next attempt. Close then
// keeps delivering this broker's spool to reachable subscribers for up to
// [WithCloseFlush] (5s by default, bounded by Close's context); what is
// left stays in the spool and is delivered by the next broker opened on the
// same directory. Publish after Close returns [broker.ErrClosed].
//
// What "the backend restarted" means here: there is no server, so a
// restart is the restart of a peer. A subscriber process that restarts
// (SIGKILL, then a new process with the same queue group) gets the messages
// its group was sent and did not acknowledge, and the ones published
// meanwhile; a publisher process that restarts on the same spool directory
// delivers what its spool held. The conformance test crashes and restarts
// every peer mid-stream (the endpoint drops its connections and listens
// again; the spool is closed without committing what was queued and opened
// again), and the benchmark test SIGKILLs a subscriber process mid-burst.
//
// # Security
//
// Every delivery request carries [HeaderTimestamp] (Unix ms),
// [HeaderNonce] (128 random bits) and [HeaderSignature], the HMAC-SHA256,
// under the shared secret, of the request path (which names the
// subscription), the timestamp, the nonce and the body (topic, messages,
// their IDs, headers, bodies and attempt numbers). The endpoint refuses,
// without handing anything to a handler, a request that is unsigned or whose
// signature does not verify (401), whose timestamp is more than the replay
// window (2 minutes by default) from its clock, or whose nonce it has seen
// within the window (403), that is larger than the size limit (413) or
// malformed (400). Each refusal is counted in [Stats]. The results the
// subscriber streams back are authenticated too: every checkpoint carries
// an HMAC of the results so far, keyed by the secret and the request's
// nonce, and the publisher applies only verified results, so an attacker
// cannot forge an acknowledgement and make a message disappear. The secret
// itself never travels. Bodies are not encrypted: use https (TLS) on an
// untrusted network. Secrets can be rotated: [WithSecret] takes older
// secrets that are still accepted.
//
// # URLs
//
// [OpenURLWith] returns the opener of "http://" and "https://" URLs; it
// takes the program's registry opener, because registries are chosen by URL
// too and "mem://" must mean the process's shared registry. The URL has no
// host or path; everything is a query parameter. For example:
//
//	http://?registry=etcd://127.0.0.1:2379&spool=/var/lib/herald/spool&listen=0.0.0.0:7070&advertise=10.0.0.5:7070
//
// The parameters are:
//
//   - registry: the registry URL (default "mem://"); escape it when it has
//     a query of its own.
//   - spool: the spool directory (required unless the program gives a
//     default).
//   - secret, secret_file: the shared secret, or a file holding it;
//     without either, the environment variable HERALD_BROKER_SECRET. Prefer
//     the file or the environment: a URL is easily logged (errors from this
//     package print it with [Redact]).
//   - listen: the subscriber endpoint's address (default 127.0.0.1:0);
//     advertise: the host:port publishers reach it at, required when
//     listening on all interfaces.
//   - ttl: the registry lease of each subscription (default 15s).
//   - replay_window, max_message: see [WithReplayWindow],
//     [WithMaxMessageSize].
//   - cert, key (https only): the endpoint's certificate and key, PEM files;
//     ca: a PEM bundle publishers trust for https endpoints (default: the
//     system's roots).
//
// Unknown parameters are errors.
package httpbroker
