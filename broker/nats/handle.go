package nats

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/nats-io/nats.go"
)

// worker runs handlers, one at a time, on the messages the pull loop
// queues. It remembers the message it works on so that the heartbeat loop
// can tell JetStream it is still in progress.
type worker struct {
	mu    sync.Mutex
	msg   *nats.Msg
	start time.Time

	// m is the Message handed to the handler, reused from delivery to
	// delivery: a handler must not keep a Message after it returns, and
	// one allocation less per delivery is measurable at high rates.
	m broker.Message
}

func (w *worker) set(m *nats.Msg) {
	w.mu.Lock()
	w.msg = m
	if m != nil {
		w.start = time.Now()
	}
	w.mu.Unlock()
}

// work handles queued messages until the queue is closed. Messages still
// queued once the subscription is stopping go back to JetStream unhandled.
func (s *subscription) work(w *worker) {
	defer s.workers.Done()
	for m := range s.jobs {
		s.queued.remove(m)
		if s.stopped.Load() {
			s.giveBack(m)
		} else {
			s.handle(m, w)
		}
		s.credit.give(1)
	}
}

// heartbeats tells JetStream that the messages whose handler has been
// running for a while, or that have been waiting for a handler for a while,
// are still in progress, so that a handler longer than the AckWait does not
// have its message (or the ones queued behind it) redelivered. It runs until
// the workers are done.
func (s *subscription) heartbeats(workers []*worker) {
	t := time.NewTimer(time.Duration(s.heartbeat.Load()))
	defer t.Stop()
	var beat []*nats.Msg
	for {
		select {
		case <-s.idle:
			return
		case <-t.C:
		}
		every := time.Duration(s.heartbeat.Load())
		beat = s.queued.waiting(beat[:0], every)
		for _, w := range workers {
			w.mu.Lock()
			m, since := w.msg, time.Since(w.start)
			w.mu.Unlock()
			if m != nil && since >= every {
				beat = append(beat, m)
			}
		}
		for i, m := range beat {
			_ = s.inProgress(m) // best effort: a lost one costs a redelivery, not a message
			beat[i] = nil
		}
		t.Reset(every)
	}
}

// handle runs the handler on one delivery through [broker.Process] and
// settles the delivery as it decides.
func (s *subscription) handle(jm *nats.Msg, w *worker) {
	delivered, seq, ts, ok := ackMeta(jm.Reply)
	if !ok {
		md, err := jm.Metadata()
		if err != nil {
			s.opts.Logger.Error("nats: delivery without JetStream metadata", "topic", s.opts.Topic, "err", err)
			_ = s.nak(jm, 0)
			return
		}
		delivered, seq, ts = md.NumDelivered, md.Sequence.Stream, md.Timestamp
	}
	if s.opts.Queue == "" {
		for {
			last := s.lastSeq.Load()
			if seq <= last || s.lastSeq.CompareAndSwap(last, seq) {
				break
			}
		}
	}
	id, h := decodeHeader(jm.Header)
	m := &w.m
	*m = broker.Message{
		ID:          id,
		Header:      h,
		Body:        jm.Data,
		Topic:       s.opts.Topic,
		Attempt:     int(delivered),
		PublishedAt: ts,
	}
	w.set(jm)
	d := broker.Process(s.ctx, s.h, m, s.opts)
	w.set(nil)

	log := s.opts.Logger
	switch d.Action {
	case broker.Ack:
		s.settle <- settlement{msg: jm}
	case broker.Retry:
		log.Debug("nats: handler failed; redelivering", "topic", m.Topic, "msg_id", m.ID, "attempt", m.Attempt, "delay", d.Delay, "err", d.Err)
		s.settle <- settlement{msg: jm, nak: true, delay: d.Delay}
	case broker.DeadLetter:
		if err := s.deadLetter(jm, m, d); err != nil {
			log.Warn("nats: cannot settle delivery; JetStream redelivers it after the ack wait",
				"topic", m.Topic, "msg_id", m.ID, "attempt", m.Attempt, "action", d.Action.String(), "err", err)
		}
	}
	*m = broker.Message{} // keep nothing of the delivery alive
}

// settlement is an acknowledgement (or a negative one) for the settler.
type settlement struct {
	msg   *nats.Msg
	nak   bool
	delay time.Duration
}

// Acknowledgements are sent in groups: the settler waits up to
// settleDelay, or for settleBatch of them, before it sends what it has.
// Each acknowledgement is a small message on the connection, and sent one
// by one as handlers finish they cost a system call each on both sides; in
// groups they leave in one write. The delay is short beside any AckWait.
const (
	settleDelay = 500 * time.Microsecond
	settleBatch = 128
)

// settler sends the workers' acknowledgements, in groups (see
// settleDelay), until the workers are done.
func (s *subscription) settler() {
	defer close(s.settled)
	batch := make([]settlement, 0, settleBatch)
	t := time.NewTimer(settleDelay)
	t.Stop()
	for {
		st, ok := <-s.settle
		if !ok {
			return
		}
		batch = append(batch[:0], st)
		t.Reset(settleDelay)
	gather:
		for len(batch) < settleBatch {
			select {
			case st, ok := <-s.settle:
				if !ok {
					break gather
				}
				batch = append(batch, st)
			case <-t.C:
				break gather
			}
		}
		t.Stop()
		for i, st := range batch {
			s.send(st)
			batch[i] = settlement{}
		}
	}
}

// send sends one acknowledgement.
func (s *subscription) send(st settlement) {
	var err error
	switch {
	case !st.nak:
		err = s.ack(st.msg)
	default:
		err = s.nak(st.msg, st.delay)
	}
	if err != nil {
		s.opts.Logger.Warn("nats: cannot settle delivery; JetStream redelivers it after the ack wait",
			"topic", s.opts.Topic, "nak", st.nak, "err", err)
	}
}

// deadLetter publishes the dead letter of m and then terminates the
// delivery; if the publish fails, it negatively acknowledges it instead so
// that nothing is lost.
func (s *subscription) deadLetter(jm *nats.Msg, m *broker.Message, d broker.Decision) error {
	o := s.opts
	ctx, cancel := context.WithTimeout(context.Background(), s.b.cfg.publishTimeout)
	defer cancel()
	if err := s.b.publish(ctx, o.DeadLetterTopic, broker.NewDeadLetter(m, o, d.Err)); err != nil {
		o.Logger.Error("nats: cannot dead-letter; redelivering", "topic", m.Topic, "msg_id", m.ID, "attempt", m.Attempt,
			"dead_letter_topic", o.DeadLetterTopic, "err", err)
		return errors.Join(err, s.nak(jm, o.Backoff.Delay(m.Attempt)))
	}
	o.Logger.Warn("nats: dead-lettered", "topic", m.Topic, "msg_id", m.ID, "attempt", m.Attempt,
		"dead_letter_topic", o.DeadLetterTopic, "err", d.Err)
	return s.term(jm, "dead-lettered to "+o.DeadLetterTopic)
}

// ackMeta reads a delivery's count, stream sequence and timestamp from its
// JetStream reply subject, as nats.Msg.Metadata does but without
// allocating:
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>
//	$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>[.<token>]
//
// ok is false for any other form; the caller then asks Metadata.
func ackMeta(reply string) (delivered, seq uint64, ts time.Time, ok bool) {
	const prefix = "$JS.ACK."
	if !strings.HasPrefix(reply, prefix) {
		return 0, 0, time.Time{}, false
	}
	// Split the tokens after the prefix (at most 10 matter).
	var tok [12]string
	n, rest := 0, reply[len(prefix):]
	for n < len(tok) {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			tok[n] = rest
			n++
			break
		}
		tok[n], rest = rest[:i], rest[i+1:]
		n++
	}
	first := 0 // index of <delivered> among the tokens after the prefix
	switch n += 2; {
	case n == 9:
		first = 2
	case n >= 11:
		first = 4
	default:
		return 0, 0, time.Time{}, false
	}
	var tm uint64
	var ok1, ok2, ok3 bool
	delivered, ok1 = parseUint(tok[first])
	seq, ok2 = parseUint(tok[first+1])
	tm, ok3 = parseUint(tok[first+3])
	if !ok1 || !ok2 || !ok3 {
		return 0, 0, time.Time{}, false
	}
	return delivered, seq, time.Unix(0, int64(tm)), true
}

// parseUint parses a decimal number without allocating.
func parseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}
