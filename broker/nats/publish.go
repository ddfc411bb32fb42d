package nats

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// attemptTimeout bounds one attempt of a publish: a request lost with a
// connection is retried rather than waited for until the caller gives up.
const attemptTimeout = 3 * time.Second

// Publish sends m to topic and returns nil once JetStream has stored it (its
// PubAck), or, when a message with the same ID was stored within the
// stream's duplicate window, once JetStream has said so: re-publishing an
// event is safe. It retries while the server is unreachable or the stream
// missing, until ctx is done (or [WithPublishTimeout] when ctx has no
// deadline). The error wraps [broker.ErrTooLarge] for a message larger than
// the server's maximum payload and [broker.ErrClosed] after Close.
func (b *Broker) Publish(ctx context.Context, topic string, m *broker.Message, opts ...broker.PublishOption) error {
	if _, err := broker.NewPublishOptions(topic, m, opts...); err != nil {
		return fmt.Errorf("nats: publish %q: %w", topic, err)
	}
	if b.isClosed() {
		return fmt.Errorf("nats: publish %q: %w", topic, broker.ErrClosed)
	}
	if m.ID == "" {
		m.ID = broker.NewID()
	}
	return b.publish(ctx, topic, m)
}

// publish is Publish once its arguments are checked, without the closed
// check: dead letters still go out while Close waits for the handlers.
func (b *Broker) publish(ctx context.Context, topic string, m *broker.Message) error {
	msg, err := b.natsMsg(subject(b.cfg.prefix, topic), m)
	if err != nil {
		return fmt.Errorf("nats: publish %q: %w", topic, err)
	}
	ctx, cancel := b.publishContext(ctx)
	defer cancel()
	if err := b.retry(ctx, topic, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		_, err := b.js.PublishMsg(actx, msg)
		return err
	}); err != nil {
		return fmt.Errorf("nats: publish %q: %w", topic, err)
	}
	return nil
}

// PublishBatch publishes ms to topic in order with JetStream's asynchronous
// publish, at most [WithMaxPending] messages awaiting their PubAck at once,
// and returns nil once every message was stored. Messages whose publish
// failed for a passing reason (connection lost, stream missing) are sent
// again, with their IDs, so JetStream drops any that were stored after all.
// It implements [broker.BatchPublisher].
func (b *Broker) PublishBatch(ctx context.Context, topic string, ms []*broker.Message, opts ...broker.PublishOption) error {
	for _, m := range ms {
		if _, err := broker.NewPublishOptions(topic, m, opts...); err != nil {
			return fmt.Errorf("nats: publish %q: %w", topic, err)
		}
	}
	if b.isClosed() {
		return fmt.Errorf("nats: publish %q: %w", topic, broker.ErrClosed)
	}
	// Check every message before sending any, so that a message too large
	// fails the batch as a whole.
	maxSize, size := b.nc.MaxPayload(), 0
	for i, m := range ms {
		if m.ID == "" {
			m.ID = broker.NewID()
		}
		if n := wireSize(m, dedupeID(m)); maxSize > 0 && int64(n) > maxSize {
			return fmt.Errorf("nats: publish %q: message %d: %w: %d bytes of body and headers, the server takes %d", topic, i, broker.ErrTooLarge, n, maxSize)
		}
		size += len(m.Body)
	}
	// nats.go keeps a message until its PubAck to send it again if need
	// be, possibly after PublishBatch returned on a cancelled context: the
	// bodies are copied, into one allocation, so that the caller's are
	// never read once PublishBatch returns. The NATS messages are built
	// one by one as they are sent, so that building overlaps sending.
	arena := make([]byte, 0, size)
	subj := subject(b.cfg.prefix, topic)
	build := func(m *broker.Message) *nats.Msg {
		start := len(arena)
		arena = append(arena, m.Body...)
		return &nats.Msg{Subject: subj, Header: encodeHeader(m, dedupeID(m)), Data: arena[start:len(arena):len(arena)]}
	}
	ctx, cancel := b.publishContext(ctx)
	defer cancel()
	batch := &outgoing{ms: ms, build: build, msgs: make([]*nats.Msg, len(ms))}
	pending := make([]int, len(ms))
	for i := range pending {
		pending[i] = i
	}
	err := b.retry(ctx, topic, func(ctx context.Context) error {
		failed, err := b.publishAsync(ctx, batch, pending)
		pending = failed
		return err
	})
	if err != nil {
		return fmt.Errorf("nats: publish %q: %d of %d messages not confirmed: %w", topic, len(pending), len(ms), err)
	}
	return nil
}

// outgoing is a batch being published: its messages, and their NATS
// messages once built.
type outgoing struct {
	ms    []*broker.Message
	msgs  []*nats.Msg
	build func(*broker.Message) *nats.Msg
}

func (o *outgoing) msg(i int) *nats.Msg {
	if o.msgs[i] == nil {
		o.msgs[i] = o.build(o.ms[i])
	}
	return o.msgs[i]
}

// publishAsync publishes the messages of o at indexes idx asynchronously
// and waits for their PubAcks. It returns the indexes not confirmed and the
// first error of a passing kind, or, if any failed for good, the errors of
// those joined.
func (b *Broker) publishAsync(ctx context.Context, o *outgoing, idx []int) ([]int, error) {
	futures := make([]jetstream.PubAckFuture, len(idx))
	var (
		failed    []int
		transient error
		permanent []error
	)
	fail := func(i int, err error) {
		failed = append(failed, i)
		if retryable(err) {
			if transient == nil {
				transient = err
			}
			return
		}
		permanent = append(permanent, err)
	}
	for k, i := range idx {
		for {
			f, err := b.js.PublishMsgAsync(o.msg(i))
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) && ctx.Err() == nil {
				continue // max pending reached and no ack for a while: wait more
			}
			if err != nil {
				if ctx.Err() != nil {
					return append(failed, idx[k:]...), ctx.Err()
				}
				fail(i, err)
			}
			futures[k] = f
			break
		}
	}
	for k, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			fail(idx[k], err)
		case <-ctx.Done():
			for j := k; j < len(futures); j++ {
				if futures[j] != nil {
					failed = append(failed, idx[j])
				}
			}
			return failed, ctx.Err()
		}
	}
	if len(permanent) > 0 {
		return failed, &permanentError{errors.Join(permanent...)}
	}
	return failed, transient
}

// retry runs attempt until it succeeds, fails for good, or ctx is done,
// waiting a growing, jittered delay between attempts. A missing stream is
// created again before the next attempt.
func (b *Broker) retry(ctx context.Context, topic string, attempt func(context.Context) error) error {
	backoff := broker.Backoff{Initial: 20 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.2}
	var last error
	for n := 1; ; n++ {
		err := b.ensureStream(ctx, topic)
		if err == nil {
			err = attempt(ctx)
			if err == nil {
				return nil
			}
		}
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
			b.forgetStream(topic)
		}
		if ctx.Err() != nil {
			if last == nil || !errors.Is(err, ctx.Err()) {
				last = err
			}
			return errors.Join(ctx.Err(), last)
		}
		if !retryable(err) {
			return classify(err)
		}
		last = err
		t := time.NewTimer(backoff.Delay(n))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errors.Join(ctx.Err(), last)
		}
	}
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// retryable reports whether err may pass: the connection is down or
// reconnecting, the server did not answer in time, the stream is missing.
func retryable(err error) bool {
	var p *permanentError
	if errors.As(err, &p) {
		return false
	}
	return errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		errors.Is(err, jetstream.ErrServerShutdown) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}

// classify wraps the broker's sentinel errors around NATS errors that mean
// the same.
func classify(err error) error {
	switch {
	case errors.Is(err, nats.ErrMaxPayload), errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum):
		return fmt.Errorf("%w: %w", broker.ErrTooLarge, err)
	case errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("%w: %w", broker.ErrClosed, err)
	}
	return err
}

// publishContext bounds ctx by [WithPublishTimeout] when it has no deadline.
func (b *Broker) publishContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, b.cfg.publishTimeout)
}

// natsMsg returns the NATS message that carries m on subject, or an error
// wrapping [broker.ErrTooLarge] when it exceeds the server's maximum payload.
func (b *Broker) natsMsg(subj string, m *broker.Message) (*nats.Msg, error) {
	msgID := dedupeID(m)
	if max := b.nc.MaxPayload(); max > 0 {
		if size := int64(wireSize(m, msgID)); size > max {
			return nil, fmt.Errorf("%w: %d bytes of body and headers, the server takes %d", broker.ErrTooLarge, size, max)
		}
	}
	return &nats.Msg{Subject: subj, Header: encodeHeader(m, msgID), Data: m.Body}, nil
}
