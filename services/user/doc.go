// Package user is Herald's user service: it registers users and reads them
// back through the herald.user.v1.UserService API (package userv1), and
// announces each registration with a user.registered event (package events)
// through a transactional outbox (package outbox).
//
// [Server] is the whole service on one port: Connect, gRPC and gRPC-Web over
// HTTP/1.1 and cleartext HTTP/2, so curl can post JSON where a gRPC client
// speaks gRPC. It stores users with gorm (SQLite by default, MySQL/MariaDB
// and PostgreSQL by URL), runs the outbox relay, and registers itself in the
// registry as [ServiceName]. [Service] is the API alone, for embedding.
//
// # Registration
//
// Create validates every field and names each wrong one in an
// InvalidArgument error:
//
//   - id (optional): 1 to 64 ASCII letters, digits, '-' or '_' (a UUID
//     fits); when empty, a UUIDv7 is generated ([broker.NewID]).
//   - name: trimmed, 1 to 100 characters of valid UTF-8, with no control
//     characters, line separators or bidirectional overrides.
//   - email: trimmed, a plain address (no display name or comment, no
//     domain literal), at most 254 bytes with a local part of at most 64. The
//     domain is lower-cased; the local part keeps its case for display and
//     mail. Uniqueness and GetByEmail ignore case in the whole address: two
//     addresses that differ only by case are one user.
//   - password: at least 8 characters and at most 72 bytes, bcrypt's limit.
//     A longer password is refused, never silently truncated.
//
// The password is hashed with bcrypt at the configured cost (10 by
// default), at most one hash per core at a time, so a burst of
// registrations queues for the hasher instead of starving reads. Then the
// user row and its event are written in one transaction: both or neither.
// Emails are unique through a unique index (on a hash of the lower-cased
// address), so two concurrent registrations of one email give one user and
// one AlreadyExists, never a server error and never a second event.
//
// # Consumers declared at start
//
// An event is published by the outbox relay, possibly before any consumer
// has ever subscribed; on brokers that route by binding (a RabbitMQ topic
// exchange, SNS, Pub/Sub) it would be dropped, as no queue is bound for the
// consumer's group yet. So [Server.Start] first declares the queue groups
// that consume the service's events ([Config.DeclareGroups]; by default the
// email service's, [events.QueueEmail] on [events.TopicUserRegistered])
// with [broker.DeclareGroup], then starts the relay. A broker that cannot
// declare groups gets a warning; any other failure fails Start.
//
// # Errors
//
// InvalidArgument (a message naming the field and why), AlreadyExists (email
// registered, id taken), NotFound, ResourceExhausted (a request over the
// size limit, 64 KiB by default, or a client address over the Create rate
// limit: 50 per second with bursts of 100 by default, a call over it waiting
// up to 2 s before it is refused; see [WithCreateRateLimit]), and Unavailable when the database cannot
// answer (retry later). Nothing the service returns, logs or publishes
// contains a password or a hash: the API has no field for them, reads never
// select the hash column, the store's SQL is never logged, and the request
// log records only procedure, code and duration.
package user
