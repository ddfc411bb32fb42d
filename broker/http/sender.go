package httpbroker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// lane delivers one target's messages to one endpoint, with up to the
// endpoint's window of requests in flight. A queue group has a lane per
// member, competing for the group's messages; a broadcast subscription has
// one.
type lane struct {
	e  *engine
	t  *target
	ep endpoint

	quit     chan struct{}
	stopOnce sync.Once

	mu        sync.Mutex
	failures  int
	downUntil time.Time
}

// Transport backoff of a lane whose endpoint cannot be reached.
const (
	laneBackoffMin = 20 * time.Millisecond
	laneBackoffMax = 2 * time.Second
)

func (e *engine) startLane(t *target, ep endpoint) *lane {
	l := &lane{e: e, t: t, ep: ep, quit: make(chan struct{})}
	for range ep.window {
		e.lanes.Go(l.run)
	}
	return l
}

// stop ends the lane once its requests in flight are answered: a member
// that leaves drains what it was given.
func (l *lane) stop() { l.stopOnce.Do(func() { close(l.quit) }) }

func (l *lane) healthy() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failures == 0
}

// fail backs the lane off after a failed request.
func (l *lane) fail() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures++
	d := laneBackoffMin << min(l.failures-1, 10)
	l.downUntil = time.Now().Add(min(d, laneBackoffMax))
}

func (l *lane) succeed() {
	l.mu.Lock()
	l.failures = 0
	l.downUntil = time.Time{}
	l.mu.Unlock()
}

func (l *lane) run() {
	for {
		es := l.next()
		if es == nil {
			return
		}
		l.deliver(es)
	}
}

// next waits for a batch of ready entries, or returns nil when the lane
// stops.
func (l *lane) next() []*entry {
	t := l.t
	for {
		select {
		case <-l.quit:
			return nil
		case <-l.e.ctx.Done():
			return nil
		default:
		}
		l.mu.Lock()
		down := time.Until(l.downUntil)
		l.mu.Unlock()
		if down > 0 {
			if !l.sleep(down, nil) {
				return nil
			}
			continue
		}
		now := time.Now().UnixNano()
		t.mu.Lock()
		if t.dropped {
			t.mu.Unlock()
			return nil
		}
		nextDue := t.promoteLocked(now)
		if len(t.ready) > 0 {
			// Share what is ready among the members, so a burst is spread
			// over the group rather than taken whole by the first lane.
			lanes := max(int(t.nLanes.Load()), 1)
			n := min(l.e.b.cfg.batchMessages, (len(t.ready)+lanes-1)/lanes)
			es := t.takeLocked(n, l.e.b.cfg.batchBytes)
			t.mu.Unlock()
			return es
		}
		wake := t.wake
		t.mu.Unlock()
		wait := time.Duration(-1)
		if nextDue > 0 {
			wait = time.Duration(nextDue - now)
		}
		if !l.sleep(wait, wake) {
			return nil
		}
	}
}

// sleep waits for d (forever if negative), wake, or the lane's end; it
// returns false at the end.
func (l *lane) sleep(d time.Duration, wake <-chan struct{}) bool {
	var timer <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-timer:
	case <-wake:
	case <-l.quit:
		return false
	case <-l.e.ctx.Done():
		return false
	}
	select {
	case <-l.quit:
		return false
	case <-l.e.ctx.Done():
		return false
	default:
		return true
	}
}

// outcome of a delivery request for the entries it could not settle.
type outcome int

const (
	outRequeue   outcome = iota // not delivered: send again, same attempt
	outAttempted                // may have been handled: send again as the next attempt
)

// deliver sends es in one request and settles each entry by the answer.
func (l *lane) deliver(es []*entry) {
	b, t := l.e.b, l.t
	payload, found, err := l.e.sp.read(make([]byte, 0, 4096), t.key, es)
	if err != nil {
		b.log.Error("http broker: read spool", "err", err)
		t.requeue(es)
		l.fail()
		return
	}
	sent := es[:0:0]
	for i, e := range es {
		if found[i] {
			sent = append(sent, e)
		}
	}
	if gone := len(es) - len(sent); gone > 0 {
		t.done(gone) // acknowledged meanwhile, or the target was dropped
	}
	if len(sent) == 0 {
		return
	}
	body := appendBatchHeader(make([]byte, 0, len(payload)+64), t.topic, len(sent))
	body = append(body, payload...)

	settled := make([]bool, len(sent))
	out, err := l.post(body, sent, settled)
	var rest []*entry
	for i, e := range sent {
		if !settled[i] {
			rest = append(rest, e)
		}
	}
	if len(rest) == 0 {
		l.succeed()
		return
	}
	if out == outAttempted && l.e.ctx.Err() == nil {
		for _, e := range rest {
			e.attempts++
			l.e.async(&op{kind: opRetry, target: t.key, seq: e.seq, attempts: e.attempts})
		}
	}
	t.requeue(rest)
	if err != nil {
		if l.e.ctx.Err() == nil {
			b.log.Debug("http broker: delivery failed", "topic", t.topic, "target", t.name, "endpoint", l.ep.Addr, "messages", len(rest), "err", err)
			l.fail()
		}
		return
	}
	l.succeed()
}

// post sends one request and applies the verified results, marking them
// in settled. It returns what to do with the unsettled entries and why.
func (l *lane) post(body []byte, sent []*entry, settled []bool) (outcome, error) {
	b := l.e.b
	u := l.ep.Addr
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return outRequeue, err
	}
	ctx, cancel := context.WithCancel(l.e.ctx)
	defer cancel()
	var idle atomic.Pointer[time.Timer]
	idle.Store(time.AfterFunc(l.ep.idle, cancel))
	defer func() { idle.Load().Stop() }()
	alive := func() { idle.Load().Reset(l.ep.idle) }

	nonce := newNonce()
	ts := timestamp(time.Now())
	req = req.WithContext(ctx)
	req.Header.Set("Content-Type", contentTypeBatch)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, b.sign.sign(req.URL.Path, ts, nonce, body))
	// Lets the transport resend on a kept-alive connection the server had
	// closed before reading; a copy that did get through is refused as a
	// replay, which is safe.
	req.Header.Set("Idempotency-Key", nonce)

	resp, err := b.client.Do(req)
	if err != nil {
		if isDialError(err) {
			return outRequeue, err
		}
		return outAttempted, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusGone:
		// The subscription is gone (it unsubscribed): stop using it.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		if r := b.routeIfAny(l.t.topic); r != nil {
			r.forget(l.ep.ID)
		}
		return outRequeue, nil
	default:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		err := fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			b.log.Error("http broker: delivery refused; do publisher and subscriber share the secret?", "topic", l.t.topic, "endpoint", l.ep.Addr, "status", resp.Status)
		}
		return outRequeue, err
	}
	alive()
	return l.results(resp.Body, nonce, sent, settled, alive)
}

// results reads the result frames of a delivery and applies them at each
// verified checkpoint.
func (l *lane) results(body io.Reader, nonce string, sent []*entry, settled []bool, alive func()) (outcome, error) {
	b := l.e.b
	r := bufio.NewReader(body)
	v := b.sign.resultVerifier(nonce)
	type result struct {
		i     int
		s     status
		delay time.Duration
	}
	var pending []result
	frame := make([]byte, 0, 32)
	left := len(sent)
	for left > 0 {
		kind, err := r.ReadByte()
		if err != nil {
			return outAttempted, fmt.Errorf("results ended with %d of %d unanswered: %w", left, len(sent), err)
		}
		alive()
		switch kind {
		case frameKeepAlive:
		case frameResult:
			idx, err1 := binary.ReadUvarint(r)
			st, err2 := r.ReadByte()
			delay, err3 := binary.ReadUvarint(r)
			if err := errors.Join(err1, err2, err3); err != nil {
				return outAttempted, fmt.Errorf("results: %w", err)
			}
			if idx >= uint64(len(sent)) || status(st) >= statusMax || settled[idx] {
				return outAttempted, fmt.Errorf("results: bad result %d/%d", idx, st)
			}
			frame = appendResult(frame[:0], int(idx), status(st), time.Duration(delay)*time.Millisecond)
			v.write(frame)
			pending = append(pending, result{int(idx), status(st), time.Duration(min(delay, 1<<40)) * time.Millisecond})
		case frameCheckpoint:
			var sum [32]byte
			if _, err := io.ReadFull(r, sum[:]); err != nil {
				return outAttempted, fmt.Errorf("results: %w", err)
			}
			if !v.check(sum[:]) {
				b.stats.badResults.Add(1)
				return outAttempted, errors.New("results: checkpoint does not verify (wrong secret, or altered on the way)")
			}
			for _, p := range pending {
				if settled[p.i] {
					return outAttempted, fmt.Errorf("results: message %d answered twice", p.i)
				}
				settled[p.i] = true
				left--
				l.apply(sent[p.i], p.s, p.delay)
			}
			pending = pending[:0]
		default:
			return outAttempted, fmt.Errorf("results: unknown frame %q", kind)
		}
	}
	return outRequeue, nil
}

// apply settles one entry by its result.
func (l *lane) apply(e *entry, s status, delay time.Duration) {
	b, t := l.e.b, l.t
	switch s {
	case statusAck:
		l.e.async(&op{kind: opAck, target: t.key, seq: e.seq})
		t.done(1)
		b.stats.delivered.Add(1)
		b.stats.spooled.Add(-1)
	case statusRetry:
		e.attempts++
		e.due = time.Now().Add(delay).UnixNano()
		l.e.async(&op{kind: opRetry, target: t.key, seq: e.seq, attempts: e.attempts, due: e.due})
		t.requeue([]*entry{e})
		b.stats.retried.Add(1)
	case statusAbandoned:
		e.attempts++
		l.e.async(&op{kind: opRetry, target: t.key, seq: e.seq, attempts: e.attempts})
		t.requeue([]*entry{e})
		b.stats.retried.Add(1)
	default: // statusNotRun
		t.requeue([]*entry{e})
	}
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
