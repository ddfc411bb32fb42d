// Package web is Herald's web console: one page, served by the admin
// listener of `herald up`, with its assets embedded (go:embed) and no
// framework or CDN. It shows:
//
//   - users: a list with search, and a register form whose messages are the
//     user service's own validation errors, placed next to the field they
//     name;
//   - the mailbox of the SMTP sink, each mail rendered as text;
//   - the live flow of events per topic (server-sent events): each message
//     as it passes, with the broker's counters and the outbox backlog;
//   - the dead-letter topics, with show, replay and purge, on backends that
//     implement [broker.DeadLetterBrowser];
//   - the health of the broker, the registry, the database and SMTP.
//
// The page talks to a small JSON API under /api/ (see [Console]). The
// console only reads and calls what the services expose; it keeps no state
// of its own but the last events seen.
package web
