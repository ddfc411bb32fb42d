// Package sqs is Herald's [broker.Broker] on Amazon SNS and SQS, built on
// the official AWS SDK for Go v2 (service/sns, service/sqs).
//
//	cfg, err := config.LoadDefaultConfig(ctx) // github.com/aws/aws-sdk-go-v2/config
//	b, err := sqs.New(ctx, cfg)
//	…
//	err = b.Publish(ctx, "user.registered", &broker.Message{Body: body})
//	sub, err := b.Subscribe(ctx, "user.registered", handle, broker.Queue("email"))
//
// A [Broker] is safe for concurrent use. It is tested in process against
// kumo (github.com/sivchari/kumo), an SNS/SQS emulator that speaks the SDK's
// JSON protocol, and against any endpoint named by HERALD_TEST_SQS_URL.
//
// # Names
//
// SNS topic and SQS queue names allow letters, digits, '-' and '_' only, and
// SQS queue names 80 characters, so Herald's names are mapped:
//
//   - topic t is the SNS topic "<prefix><t with '.' as '_'>-<h>", where h is
//     8 hex digits of the SHA-256 of t: "user.registered" is
//     "herald-user_registered-2f0c…". The readable part alone would make
//     "a.b" and "a_b" one topic; the hash keeps them apart.
//   - queue group q on t is the SQS queue "<prefix><t>-<q>-<h>" with h a hash
//     of both, the readable part cut so that the name (and its "-dlq"
//     redrive queue) fits 80 characters.
//   - a broadcast subscriber's queue is "<prefix><t>-b-<random>".
//
// The prefix is "herald-" by default (see [WithPrefix]).
//
// # Delivery semantics
//
// Delivery is at least once, as the broker package describes, with these
// SNS/SQS specifics:
//
//   - Publish publishes to the topic's SNS topic (created when missing) and
//     returns nil once SNS has accepted the message; SNS then copies it, as a
//     raw message, into the queue of every queue group and broadcast
//     subscriber of the topic: that is the fan-out (two groups each get every
//     message). A topic with no subscriber drops the message, and a queue
//     group gets what is published once its queue is subscribed: by its
//     first Subscribe, or by [Broker.DeclareGroup] ([broker.GroupDeclarer]),
//     which makes the queue, its policy and its subscription without a
//     member, so that a publisher declares at start the groups that consume
//     its events. [broker.Key] is ignored: standard queues keep no order.
//     There is no [broker.BatchPublisher]: broker.PublishBatch publishes
//     concurrently.
//   - A queue group is a queue of its own, subscribed to the topic once
//     (members that race to subscribe it remove the duplicates), with a
//     policy letting the topic send to it; it keeps messages for 14 days
//     ([WithRetention]) whether or not a member is live. A broadcast
//     subscriber's queue is created by Subscribe and deleted, with its
//     subscription, by Unsubscribe.
//   - The message travels as the SNS message body when it is text SQS
//     accepts (UTF-8 without control characters other than tab, CR and LF),
//     else in base64; an empty body travels as "-". Its ID, its headers and
//     how the body travels are packed as JSON in one message attribute,
//     "herald", because SNS and SQS carry at most 10 attributes; headers that
//     are not such text are packed byte for byte in base64 inside it. Other
//     attributes are not read. The encoded body and the attribute must fit
//     256 KiB ([WithMaxMessageBytes]); larger messages are refused with
//     [broker.ErrTooLarge]. Binary bodies therefore fit up to about 190 KiB.
//   - A subscriber long-polls (WaitTimeSeconds, [WithWaitTime]) for up to 10
//     messages whenever it holds fewer than Concurrency + 10, and runs up to
//     [broker.Concurrency] handlers at once. Received messages are invisible
//     for the subscription's AckWait, rounded up to whole seconds; while a
//     message waits or runs, the subscriber extends its visibility timeout
//     (in batches) before half of it is left, so a message comes back only
//     when its subscriber stopped answering for about an AckWait.
//     Acknowledged messages are deleted in batches of up to 10.
//   - [broker.Message.Attempt] is SQS's ApproximateReceiveCount and
//     [broker.Message.PublishedAt] its SentTimestamp (when SNS put the
//     message in the queue).
//   - A handler error makes the message visible again after the backoff's
//     delay: a delay of a second or more is its visibility timeout, rounded
//     up to whole seconds (SQS's unit; at most 12 hours), so SQS keeps it
//     meanwhile; a shorter delay is waited out by the subscriber, which
//     keeps the message invisible and then sets its timeout to 0.
//   - Dead letters are Herald's: after MaxAttempts, or for a
//     [broker.Permanent] error, [broker.NewDeadLetter] is published to the
//     dead-letter topic's SNS topic, so that every subscriber of that Herald
//     topic gets it, then the original is deleted; if that publish fails the
//     original is retried. [WithRedrive] adds SQS's native redrive policy to
//     each queue group's queue as a safety net: a message received more than
//     MaxAttempts plus a margin times (one whose handler keeps crashing the
//     process, so that no decision is ever made) is moved by SQS to the
//     queue "<queue>-dlq", as it is.
//   - Unsubscribe and Close stop receiving, make the messages received but
//     not started (and those waiting out a short delay) visible at once, wait
//     for the handlers in flight (bounded by ctx) and delete what they
//     acknowledged. A receive in flight is not cancelled (SQS would hide the
//     messages it was returning for a visibility timeout): it ends on its
//     own and what it returns is made visible at once. A handler that
//     outlives ctx has its message made visible, so another member gets it,
//     with Attempt one higher.
//
// # The kumo emulator
//
// kumo v0.33 supports everything the conformance suite uses, with these
// differences from AWS: it does not implement SNS PublishBatch; a long poll
// is not woken when a message becomes visible again (a visibility timeout
// that ends, or one set to 0), only when a message arrives, so a redelivery
// can wait until the current long poll ends (the tests poll for 1 s);
// it accepts bodies AWS refuses (Herald never sends them), and refuses an
// SNS message that reads as an integer or a boolean ("0", "-12", "true",
// "F"), which AWS takes as text: its Query-protocol adapter turns such a
// value into a JSON number before decoding the request, and answers
// "InvalidParameter: Failed to parse request body"; every queue URL
// it returns names localhost:4566 (the broker puts the endpoint's host in
// its place). It runs in the test process and keeps nothing across a
// restart, so the suite's Restart is not run.
//
// # URLs
//
// [OpenURL] opens "sqs://" URLs:
//
//	sqs://eu-west-1                                      AWS, default credentials
//	sqs://us-east-1?endpoint=http://127.0.0.1:4566       an emulator
//
// Query parameters: endpoint (the http(s) URL of an emulator; without AWS
// credentials in the environment, static dummy ones are used), prefix (see
// [WithPrefix]), wait (a Go duration in whole seconds, [WithWaitTime]),
// max_message_bytes and redrive (integers, [WithMaxMessageBytes] and
// [WithRedrive]). Unknown parameters are an error.
package sqs
