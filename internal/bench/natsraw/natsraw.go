// Package natsraw is the baseline of `herald bench broker` on NATS: the same
// work as Herald's NATS backend does, written directly on nats.go's
// JetStream API, in the same process and against the same server, so that
// the ratio between the two is Herald's overhead and nothing else.
//
// It is meant to be a good use of nats.go, not a weak one: asynchronous
// publishing with a bounded number of acknowledgements in flight, and a
// pull consumer with the client's default prefetch acknowledging each
// message from the Consume callback.
package natsraw

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxPending bounds the asynchronous publishes awaiting their PubAck: the
// same bound as Herald's NATS backend uses by default (DefaultMaxPending in
// broker/nats).
const MaxPending = 4096

// Run measures raw JetStream throughput against the server at url in two
// timed phases, on a fresh file-backed stream deleted afterwards:
//
//  1. publish: messages messages of size bytes with PublishMsgAsync, at most
//     [MaxPending] awaiting their acknowledgement, until every PubAck has
//     arrived;
//  2. consume: a new durable pull consumer (explicit ack, deliver all) reads
//     them back with Consume and acknowledges each, until the last one.
//
// It returns each phase's messages per second. ctx bounds the whole run.
func Run(ctx context.Context, url string, messages, size int) (publishedPerSec, consumedPerSec float64, err error) {
	if messages < 1 || size < 0 {
		return 0, 0, fmt.Errorf("natsraw: need messages >= 1 and size >= 0, not %d and %d", messages, size)
	}
	nc, err := nats.Connect(url, nats.Name("herald-bench-natsraw"))
	if err != nil {
		return 0, 0, fmt.Errorf("natsraw: connect: %w", err)
	}
	defer nc.Close()

	var asyncErrs atomic.Int64
	var firstErr atomic.Value
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(MaxPending),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			if asyncErrs.Add(1) == 1 {
				firstErr.Store(err)
			}
		}),
	)
	if err != nil {
		return 0, 0, fmt.Errorf("natsraw: jetstream: %w", err)
	}

	name := "natsraw_" + nats.NewInbox()[len(nats.InboxPrefix):]
	subject := "natsraw." + name
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:      name,
		Subjects:  []string{subject},
		Retention: jetstream.LimitsPolicy,
		Storage:   jetstream.FileStorage,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("natsraw: create stream: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(dctx, name)
	}()

	body := make([]byte, size)
	_, _ = rand.Read(body)

	// Phase 1: publish.
	start := time.Now()
	for i := 0; i < messages; {
		_, err := js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: body})
		switch {
		case err == nil:
			i++
		case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
			// max pending reached and no ack for a while: try again
		default:
			return 0, 0, fmt.Errorf("natsraw: publish: %w", err)
		}
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	pubTime := time.Since(start)
	if n := asyncErrs.Load(); n > 0 {
		return 0, 0, fmt.Errorf("natsraw: %d publishes failed, first: %v", n, firstErr.Load())
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("natsraw: stream info: %w", err)
	}
	if info.State.Msgs != uint64(messages) {
		return 0, 0, fmt.Errorf("natsraw: stream holds %d messages, %d published", info.State.Msgs, messages)
	}

	// Phase 2: consume and acknowledge.
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       "natsraw",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("natsraw: create consumer: %w", err)
	}
	var (
		got     atomic.Int64
		ackErrs atomic.Int64
		done    = make(chan struct{})
	)
	start = time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if err := m.Ack(); err != nil {
			ackErrs.Add(1)
		}
		if got.Add(1) == int64(messages) {
			close(done)
		}
	})
	if err != nil {
		return 0, 0, fmt.Errorf("natsraw: consume: %w", err)
	}
	defer cc.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("natsraw: consumed %d of %d: %w", got.Load(), messages, ctx.Err())
	}
	consTime := time.Since(start)
	if n := ackErrs.Load(); n > 0 {
		return 0, 0, fmt.Errorf("natsraw: %d acks failed", n)
	}
	// The acks are asynchronous: make sure the server has them before the
	// stream goes, as Herald's Close does.
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		return 0, 0, fmt.Errorf("natsraw: flush: %w", err)
	}
	return float64(messages) / pubTime.Seconds(), float64(messages) / consTime.Seconds(), nil
}
