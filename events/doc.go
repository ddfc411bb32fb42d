// Package events defines the events Herald's services exchange and how they
// travel as broker messages.
//
// Events are CloudEvents 1.0 in binary content mode: the context attributes
// (id, source, type, specversion, time, datacontenttype) travel as message
// headers named as in the CloudEvents HTTP and NATS bindings ("ce-id", …,
// "content-type"), and the data is the message body as JSON. The event ID is
// the broker message ID, so a consumer deduplicating on the message ID
// deduplicates events.
//
// No event carries a secret: [UserRegistered] has no field a password or a
// password hash could be put in.
package events
