// Package outbox is a transactional outbox: a service writes the events it
// must publish into a table of its own database, in the same transaction as
// the change they announce, and a [Relay] publishes them to the broker
// afterwards. An event is therefore published if and only if its change was
// committed, even when the process dies between the commit and the publish
// or the broker is down at that moment.
//
// # Writing
//
// [Add] inserts one message into the outbox table (herald_outbox, created by
// [Migrate]) through the caller's transaction:
//
//	err := db.Transaction(func(tx *gorm.DB) error {
//		if err := tx.Create(&user).Error; err != nil {
//			return err
//		}
//		return outbox.Add(tx, events.TopicUserRegistered, msg)
//	})
//	if err == nil {
//		relay.Notify() // publish now rather than at the next poll
//	}
//
// The message's ID, headers and body are stored as given and published
// unchanged, so consumers see the ID the writer chose (and deduplicate on it).
//
// # Delivery semantics
//
// Delivery is at least once, and never concurrent: several relays (one per
// service replica) may run over one database, and each pending row is
// published by one of them at a time.
//
//   - A relay claims a batch of due rows by setting a lease on them
//     (claimed_until, claimed_by). On MySQL/MariaDB and PostgreSQL the batch
//     is selected with SELECT … FOR UPDATE SKIP LOCKED, so concurrent relays
//     take disjoint batches without waiting for each other; on SQLite, which
//     has one writer at a time, one UPDATE … WHERE seq IN (SELECT … LIMIT n)
//     claims the batch atomically.
//   - The relay publishes the batch with [broker.PublishBatch] (grouped by
//     topic, in insertion order) under a timeout shorter than the lease, so
//     a lease cannot expire while its publish is still running.
//   - Once the broker has accepted them, the rows are deleted: the outbox is
//     a queue, not a log (the broker and the consumers keep the history).
//     A relay deletes only rows it still holds the claim of.
//   - When the publish fails (broker down, timeout), the rows are released
//     with their attempt count raised and become due again after a
//     [broker.Backoff] delay: a broker outage delays events, it never loses
//     them. The last error is kept in the row for inspection.
//   - When a relay dies holding a claim, its lease expires and another relay
//     (or the same one, restarted) publishes the rows. The broker may then
//     see a message twice (if the dead relay had published it before dying);
//     it has the same ID both times, so consumers deduplicate it.
//   - Order is insertion order within one relay's batch; across relays and
//     retries it is not guaranteed.
//
// A [Relay] wakes at once on [Relay.Notify] (call it after committing) and
// otherwise polls, every second by default, as a fallback for writes made
// by other processes. [Relay.Backlog] reports the rows waiting and the age
// of the oldest, for metrics and health checks.
package outbox
