package nats

import (
	"context"
	"errors"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// newConsumerConfig is the consumer of a subscriber to subject with
// options o: with o.Queue, the queue group's durable consumer, from the
// beginning of the stream (what [Broker.DeclareGroup] creates too); without,
// what a broadcast subscriber's has in common with it.
func newConsumerConfig(subject string, o *broker.SubscribeOptions) jetstream.ConsumerConfig {
	c := jetstream.ConsumerConfig{
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    o.MaxAttempts + maxDeliverMargin,
		MaxAckPending: max(minMaxAckPending, 2*o.Concurrency),
		FilterSubject: subject,
	}
	if o.Queue != "" {
		c.Durable = o.Queue
		c.DeliverPolicy = jetstream.DeliverAllPolicy
		c.Description = "Herald queue group " + o.Queue + " on " + o.Topic
	}
	return c
}

// consumerConfig is the consumer of a new subscription; resume makes a
// broadcast subscriber whose consumer was lost start after the last message
// it got. A queue group's consumer leaves Replicas 0: JetStream gives it
// the stream's, and moves it along when the stream is scaled.
func (s *subscription) consumerConfig(resume bool) jetstream.ConsumerConfig {
	o := s.opts
	c := newConsumerConfig(s.subject, o)
	if o.Queue != "" {
		return c
	}
	c.Name = s.name
	c.Description = "Herald broadcast subscriber on " + o.Topic
	if r := s.b.cfg.replicas; r > 1 {
		// JetStream makes a consumer without a durable name R1 on a
		// Limits stream unless told: it would not survive its server.
		c.Replicas = r
	}
	c.InactiveThreshold = broadcastInactive
	c.DeliverPolicy = jetstream.DeliverNewPolicy
	if seq := s.lastSeq.Load(); resume && seq > 0 {
		c.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		c.OptStartSeq = seq + 1
	}
	return c
}

// createConsumer creates the subscription's consumer, or, for a queue group
// whose consumer exists, updates its AckWait and MaxDeliver to this
// member's and raises its MaxAckPending if this member needs more. Members
// of one group should use the same options: the last to join sets them.
func (s *subscription) createConsumer(ctx context.Context, resume bool) (jetstream.Consumer, error) {
	js := s.b.js
	want := s.consumerConfig(resume)
	if want.Durable == "" {
		cons, err := js.CreateConsumer(ctx, s.stream, want)
		if err != nil {
			return nil, err
		}
		if !resume {
			// DeliverNew starts after the stream's last message at creation:
			// a lost consumer is recreated from there, not from "new" again.
			s.lastSeq.Store(cons.CachedInfo().Delivered.Stream)
		}
		return cons, nil
	}
	cons, err := s.b.durable(ctx, s.stream, want)
	if err != nil {
		return nil, err
	}
	have := cons.CachedInfo().Config
	if have.AckWait != want.AckWait || have.MaxDeliver != want.MaxDeliver || have.MaxAckPending < want.MaxAckPending {
		have.AckWait, have.MaxDeliver = want.AckWait, want.MaxDeliver
		have.MaxAckPending = max(have.MaxAckPending, want.MaxAckPending)
		if cons, err = js.UpdateConsumer(ctx, s.stream, have); err != nil {
			return nil, err
		}
	}
	s.setAckWait(cons.CachedInfo().Config.AckWait)
	return cons, nil
}

// durable returns the durable consumer want.Durable of stream, creating it
// with want when it does not exist; an existing one is returned as it is.
func (b *Broker) durable(ctx context.Context, stream string, want jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	cons, err := b.js.Consumer(ctx, stream, want.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = b.js.CreateConsumer(ctx, stream, want)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			cons, err = b.js.Consumer(ctx, stream, want.Durable) // created by another client in between
		}
	}
	return cons, err
}

// lostConsumer reports whether a pull failed in a way that means the
// consumer may be gone: the server restarted without it, or it was deleted.
func lostConsumer(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrNoHeartbeat) ||
		errors.Is(err, jetstream.ErrBadRequest) ||
		errors.Is(err, nats.ErrNoResponders)
}

// restore checks that the consumer exists and recreates it (and its stream)
// when it does not.
func (s *subscription) restore() error {
	// Short: a request sent to a server that is going away gets no answer,
	// and the next pull or check goes to the one that comes back.
	ctx, cancel := context.WithTimeout(s.life, 2*time.Second)
	defer cancel()
	go func() {
		select {
		case <-s.status: // reconnected: ask the server that is back
			cancel()
		case <-ctx.Done():
		}
	}()
	_, err := s.b.js.Consumer(ctx, s.stream, s.name)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	s.b.forgetStream(s.opts.Topic)
	if err := s.b.ensureStream(ctx, s.opts.Topic); err != nil {
		return err
	}
	s.opts.Logger.Warn("nats: consumer lost; recreating it", "topic", s.opts.Topic, "queue", s.opts.Queue, "consumer", s.name)
	_, err = s.createConsumer(ctx, true)
	return err
}

// deleteEphemeral deletes a broadcast subscriber's consumer (best effort:
// the server deletes it anyway once it has been inactive for a while).
func (s *subscription) deleteEphemeral() {
	if s.opts.Queue != "" || !s.b.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.b.js.DeleteConsumer(ctx, s.stream, s.name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.opts.Logger.Debug("nats: delete broadcast consumer", "topic", s.opts.Topic, "consumer", s.name, "err", err)
	}
}
