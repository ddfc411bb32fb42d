// Package mailbox reads and writes a local mailbox: a Maildir directory
// (tmp/, new/, cur/), the format mail servers have used for decades because
// it needs no locks. [Deliver] writes a mail to tmp/, syncs it and renames
// it into new/, so a reader in another process sees whole mails or nothing.
// [List] and [Get] read it.
//
// Mails come from outside (any SMTP client can hand the sink one), so
// [Parse] treats them as untrusted: sizes are bounded, malformed parts give
// errors or empty fields, never a panic.
//
// # IDs
//
// A mail's ID is its Maildir file name up to the ':' of the info suffix:
// "<unix nanoseconds>.<random hex>.<host>". IDs sort by delivery time.
package mailbox
