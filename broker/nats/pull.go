package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// How a subscription pulls.
//
// A subscription sends JetStream's pull requests itself, to
// apiNext+"<stream>.<consumer>", with the reply subject of an inbox it
// owns: one core NATS subscription, made by Subscribe and used by every
// pull after, all of whose messages (deliveries and the server's status
// replies) come to the pull loop on one channel. nats.go's Fetch is not
// used: it subscribes a new inbox per pull and unsubscribes it in a
// goroutine of its own after the pull, so a subscriber that leaves cannot
// tell when the server stopped seeing the inbox of its last pull — and the
// server hands the next message to a pull request whose inbox it still
// sees, where it then waits a whole AckWait before going to another member
// (TestRejoinedGroupGetsNextMessageAtOnce).
//
// Owning the inbox is what lets Unsubscribe close that window: it
// unsubscribes the inbox and flushes the connection before it returns. The
// server processes a client's protocol in order, and removes a
// subscription from its interest table as it reads the UNSUB, before the
// PONG that ends the flush; JetStream checks that a pull request's reply
// subject has interest before it hands the request a message (nats-server
// consumer.go, nextWaiting), and drops the request when it has none. So
// once Unsubscribe returns, the server the subscriber is connected to hands
// its pulls nothing more. On a single server (Herald's default, embedded or
// not) that is the server that holds the consumer. In a cluster whose
// consumer leader is another server, the leader learns of the UNSUB over
// the route a moment later, and a server with leaf nodes or gateways
// assumes interest in a pull request younger than two seconds: there the
// window is down to that delay rather than closed.
//
// The UNSUB goes out as a drain (nats.go keeps delivering what the server
// sent before it saw the UNSUB), so a message already on its way when the
// subscriber leaves reaches the pull loop before the flush's answer and
// goes back to JetStream with a Nak at once, for another member, instead
// of being dropped by the client and waiting out its AckWait. One the
// consumer handed the pull just as the server read the UNSUB finds no
// interest when the server routes it, and the server queues it again at
// once itself (consumer.go, didNotDeliver).
//
// One pull is out at a time: the server spreads messages across the pulls
// it holds, so two at once would deliver out of order. A pull asks for the
// free places (see [credit]) and asks the server for an idle heartbeat
// every pullHeartbeat; it ends when it has delivered its batch (the server
// says nothing then), or with a status: 408 when it expires, 404, 409 for a
// consumer deleted (the consumer is restored), a leadership change (a new
// pull goes at once), a limit of the consumer's (MaxRequestBatch and
// MaxRequestExpires are learnt and followed from then on), 503 when no
// server answers for the consumer (it is restored); other statuses are
// retried with backoff. A pull the server may have lost without saying so
// — the connection came back from a disconnection, or two heartbeats were
// missed (the server drops a pull beyond the consumer's MaxWaiting in
// silence when it asks for heartbeats) — is abandoned, and its inbox
// replaced by a new one first: the server might still hold the old pull and
// would deliver to it if the inbox stayed (nats.go subscribes it again
// after a reconnection), beyond the places free. What still comes from an
// abandoned pull goes back with a Nak.

const (
	// apiNext starts the subject of a consumer's pull requests, followed
	// by "<stream>.<consumer>" (JetStream's API without a domain, as the
	// broker's jetstream.JetStream uses).
	apiNext = "$JS.API.CONSUMER.MSG.NEXT."
	// pullExpiry is the life of one pull at the server. A pull that did
	// not fill up ends after it (408), and the next one asks for every
	// place freed meanwhile.
	pullExpiry = 30 * time.Second
	// pullHeartbeat is how often the server says it still holds an idle
	// pull. Two missed in a row and the pull is abandoned: a pull the
	// server lost silently (a full MaxWaiting, a consumer moved) costs at
	// most three heartbeats.
	pullHeartbeat = 5 * time.Second
)

// JetStream status replies (the status line of a header-only message).
const (
	statusHeader      = "Status"      // "100", "404", "408", "409", "503"…
	descriptionHeader = "Description" // the status's text
	stalledHeader     = "Nats-Consumer-Stalled"
)

// credit counts a subscription's free places (handlers and prefetch): the
// pull loop takes them to size its pulls, the workers give them back as
// handlers finish.
type credit struct {
	mu   sync.Mutex
	free int
	want int           // the pull loop waits until free >= want (0: not waiting)
	wake chan struct{} // capacity 1: free reached want
}

func newCredit(n int) *credit { return &credit{free: n, wake: make(chan struct{}, 1)} }

// take returns every free slot when there are at least min of them, and
// otherwise 0, asking for a wake-up once there are.
func (c *credit) take(min int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.free >= min {
		n := c.free
		c.free, c.want = 0, 0
		return n
	}
	c.want = min
	return 0
}

// give returns n slots.
func (c *credit) give(n int) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	c.free += n
	wake := c.want > 0 && c.free >= c.want
	if wake {
		c.want = 0
	}
	c.mu.Unlock()
	if wake {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// puller is the pull loop's state; only the loop's goroutine touches it.
type puller struct {
	s       *subscription
	status  chan nats.Status // the connection's reconnections; nil once the listener is gone
	batch   int              // the least free places worth a pull
	limit   int              // the consumer's MaxRequestBatch, once a 409 said it (0: none)
	expires time.Duration    // the pulls' expiry, lowered to the consumer's MaxRequestExpires
	beat    time.Duration    // the idle heartbeat the pull out asked for
	asked   int              // messages the pull out asked for (0: no pull out)
	got     int              // messages it delivered
	queued  int              // of which queued for the workers (the others went back)
	silent  int              // heartbeat periods without a word from the pull out
	ticker  *time.Ticker     // every beat while a pull is out
	req     []byte           // the pull request, reused
}

// pull is the subscription's pull loop. Free places are its credit, one per
// handler plus the prefetch (see [WithPrefetch]): a pull asks for as many
// messages as it took places, so the client never holds more than that.
// Once half the places are free (at least one), it pulls for all the free
// ones and queues the messages for the workers as they arrive. It returns
// when the subscription stops; Unsubscribe then closes the inbox.
func (s *subscription) pull() {
	defer close(s.done)
	defer s.b.nc.RemoveStatusListener(s.status)
	p := &puller{s: s, status: s.status, batch: max(1, cap(s.jobs)/2), expires: pullExpiry, ticker: time.NewTicker(time.Hour)}
	p.ticker.Stop()
	defer p.ticker.Stop()
	for {
		if p.asked == 0 {
			if !p.start() {
				return
			}
			continue
		}
		select {
		case m := <-s.replies:
			if !p.receive(m) {
				return
			}
		case <-p.ticker.C:
			// Three ticks without a word: silent for over two heartbeats.
			if p.silent++; p.silent < 3 {
				continue
			}
			p.abandon("missed heartbeats")
			if !p.failed(jetstream.ErrNoHeartbeat) {
				return
			}
		case _, ok := <-p.status:
			if !ok {
				p.status = nil // the listener was removed: the broker is closing
				continue
			}
			p.abandon("reconnected") // the server may have lost it
		case <-s.stopping:
			p.end()
			return
		}
	}
}

// start waits until enough places are free and sends a pull for all of
// them. It reports false when the subscription stopped first.
func (p *puller) start() bool {
	s := p.s
	for {
		least := p.batch
		if p.limit > 0 {
			least = min(least, p.limit)
		}
		if n := s.credit.take(least); n > 0 {
			if s.stopped.Load() {
				s.credit.give(n)
				return false
			}
			if p.limit > 0 && n > p.limit {
				s.credit.give(n - p.limit)
				n = p.limit
			}
			if err := p.send(n); err != nil {
				s.credit.give(n)
				if !p.failed(err) {
					return false
				}
				continue
			}
			return true
		}
		select {
		case <-s.credit.wake:
		case m := <-s.replies:
			p.stray(m) // no pull is out: a straggler of an abandoned one
		case _, ok := <-p.status: // no pull is out: nothing to abandon
			if !ok {
				p.status = nil
			}
		case <-s.stopping:
			return false
		}
	}
}

// send sends a pull for n messages on the subscription's inbox.
func (p *puller) send(n int) error {
	s := p.s
	beat := min(pullHeartbeat, p.expires/2)
	r := append(p.req[:0], `{"batch":`...)
	r = strconv.AppendInt(r, int64(n), 10)
	r = append(r, `,"expires":`...)
	r = strconv.AppendInt(r, int64(p.expires), 10)
	r = append(r, `,"idle_heartbeat":`...)
	r = strconv.AppendInt(r, int64(beat), 10)
	r = append(r, '}')
	p.req = r
	if err := s.b.nc.PublishRequest(s.next, s.inbox.Subject, r); err != nil {
		return fmt.Errorf("pull request: %w", err)
	}
	p.asked, p.got, p.queued = n, 0, 0
	p.beat, p.silent = beat, 0
	p.ticker.Reset(beat)
	return nil
}

// receive handles a message from the inbox while a pull is out. It reports
// false when the subscription stopped.
func (p *puller) receive(m *nats.Msg) bool {
	s := p.s
	if m.Sub != s.inbox {
		p.stray(m)
		return true
	}
	p.silent = 0
	if !isDelivery(m) {
		return p.reply(m)
	}
	p.got++
	if s.stopped.Load() {
		s.giveBack(m)
	} else {
		s.queued.add(m)
		s.jobs <- m // never blocks: jobs holds every place, this pull took p.asked free ones
		p.queued++
	}
	if p.got == p.asked { // the server ends a pull once it delivered its batch
		p.end()
		s.fails.Store(0)
	}
	return true
}

// reply handles a status reply to the pull out. It reports false when the
// subscription stopped.
func (p *puller) reply(m *nats.Msg) bool {
	s := p.s
	code, desc := m.Header.Get(statusHeader), m.Header.Get(descriptionHeader)
	switch code {
	case "100":
		// An idle heartbeat: the pull is alive. Flow control, which
		// JetStream asks of push consumers only, is answered all the same.
		if m.Reply != "" {
			_ = s.b.nc.Publish(m.Reply, nil)
		}
		if fc := m.Header.Get(stalledHeader); fc != "" {
			_ = s.b.nc.Publish(fc, nil)
		}
		return true
	case "404", "408": // no messages; the pull expired
		p.end()
		s.fails.Store(0)
		return true
	case "409":
		if p.conflict(desc) {
			p.end()
			return true
		}
		if strings.Contains(strings.ToLower(desc), "consumer deleted") {
			p.end()
			return p.failed(jetstream.ErrConsumerDeleted)
		}
	case "503": // no responders: no server holds the consumer
		p.end()
		return p.failed(nats.ErrNoResponders)
	case "400":
		p.end()
		return p.failed(fmt.Errorf("%w: %s", jetstream.ErrBadRequest, desc))
	}
	p.end()
	return p.failed(fmt.Errorf("pull ended with status %s %s", code, desc))
}

// conflict reads a 409 that needs no backoff: a leadership change (the
// consumer's new leader takes a new pull at once), or a limit of the
// consumer's that the pulls follow from now on. It reports whether desc was
// one.
func (p *puller) conflict(desc string) bool {
	const (
		maxBatch   = "exceeded maxrequestbatch of "
		maxExpires = "exceeded maxrequestexpires of "
	)
	lower := strings.ToLower(desc)
	switch {
	case strings.Contains(lower, "leadership change"):
		return true
	case strings.HasPrefix(lower, maxBatch):
		n, err := strconv.Atoi(strings.TrimSpace(desc[len(maxBatch):]))
		if err != nil || n < 1 {
			return false
		}
		p.limit = n
		p.s.opts.Logger.Warn("nats: the consumer limits pulls; pulling fewer messages at a time",
			"topic", p.s.opts.Topic, "queue", p.s.opts.Queue, "max_request_batch", n)
		return true
	case strings.HasPrefix(lower, maxExpires):
		d, err := time.ParseDuration(strings.TrimSpace(desc[len(maxExpires):]))
		if err != nil || d < 2*time.Millisecond || d >= p.expires {
			return false
		}
		p.expires = d
		p.s.opts.Logger.Warn("nats: the consumer limits pulls; pulling for a shorter time",
			"topic", p.s.opts.Topic, "queue", p.s.opts.Queue, "max_request_expires", d)
		return true
	}
	return false
}

// end closes the books of the pull out: the places it did not fill are
// free again.
func (p *puller) end() {
	p.s.credit.give(p.asked - p.queued)
	p.asked, p.got, p.queued = 0, 0, 0
	p.ticker.Stop()
}

// abandon gives up the pull out, which the server may still hold. The
// inbox is replaced first, so that the old pull, if the server still has
// it, has no interest left and can deliver nothing more.
func (p *puller) abandon(why string) {
	s := p.s
	p.end()
	s.opts.Logger.Debug("nats: pull abandoned", "topic", s.opts.Topic, "queue", s.opts.Queue, "why", why)
	ctx, cancel := context.WithTimeout(s.life, 2*time.Second)
	defer cancel()
	if err := s.replaceInbox(ctx); err != nil {
		s.opts.Logger.Debug("nats: replace the pull inbox", "topic", s.opts.Topic, "queue", s.opts.Queue, "err", err)
	}
}

// stray handles a message from an abandoned pull: a delivery goes back to
// JetStream at once (no place was taken for it), a status is moot.
func (p *puller) stray(m *nats.Msg) {
	if isDelivery(m) {
		p.s.giveBack(m)
	}
}

// failed counts a failed pull and handles it (see pullFailed).
func (p *puller) failed(err error) bool {
	p.s.fails.Add(1)
	return p.s.pullFailed(err)
}

// openInbox subscribes a new inbox for the subscription's pulls and makes
// it the one they reply to.
func (s *subscription) openInbox() error {
	sub, err := s.b.nc.ChanSubscribe(s.b.nc.NewInbox(), s.replies)
	if err != nil {
		return err
	}
	s.inbox = sub
	return nil
}

// replaceInbox gives the pulls a new inbox and retires the old one.
func (s *subscription) replaceInbox(ctx context.Context) error {
	old := s.inbox
	if err := s.openInbox(); err != nil {
		return err
	}
	return s.retireInbox(ctx, old)
}

// retireInbox withdraws the interest in inbox and waits until the server
// has seen it go (ctx bounds the wait): the UNSUB leaves as a drain, so what
// the server sent before it still reaches s.replies, and the flush returns
// once the server has read it. The final Unsubscribe removes the
// subscription from the client at once, so that a reconnection during the
// drain cannot subscribe it again.
func (s *subscription) retireInbox(ctx context.Context, inbox *nats.Subscription) error {
	drainErr := inbox.Drain()
	err := s.b.nc.FlushWithContext(ctx)
	_ = inbox.Unsubscribe() // ErrBadSubscription once the drain removed it
	if drainErr != nil {
		return drainErr
	}
	return err
}

// closeInbox retires the inbox once the pull loop is done, and gives back
// to JetStream what arrived on it since. When it returns (the flush
// succeeded, or the connection is down), the server hands the
// subscription's pulls nothing more (see the top of this file).
func (s *subscription) closeInbox(ctx context.Context) {
	fctx, cancel := flushContext(ctx)
	defer cancel()
	if err := s.retireInbox(fctx, s.inbox); err != nil && s.b.nc.IsConnected() {
		s.opts.Logger.Debug("nats: close the pull inbox", "topic", s.opts.Topic, "queue", s.opts.Queue, "err", err)
	}
	for {
		select {
		case m := <-s.replies:
			if isDelivery(m) {
				s.giveBack(m)
			}
		default:
			return
		}
	}
}

// pullFailed handles a failed pull: it restores the consumer if it may be
// lost, and waits the backoff. It reports false when the subscription
// stopped meanwhile.
func (s *subscription) pullFailed(err error) bool {
	log := s.opts.Logger
	log.Debug("nats: pull failed", "topic", s.opts.Topic, "queue", s.opts.Queue, "err", err)
	if lostConsumer(err) {
		if err := s.restore(); errors.Is(err, context.Canceled) {
			log.Debug("nats: consumer check interrupted by a reconnection", "topic", s.opts.Topic, "queue", s.opts.Queue)
		} else if err != nil {
			log.Warn("nats: cannot restore the consumer; retrying", "topic", s.opts.Topic, "queue", s.opts.Queue, "err", err)
		}
	}
	backoff := broker.Backoff{Initial: 50 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2}
	t := time.NewTimer(backoff.Delay(int(s.fails.Load())))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stopping:
		return false
	}
}

// giveBack returns a message that was pulled but will not be handled to
// JetStream, for another member or a later delivery.
func (s *subscription) giveBack(m *nats.Msg) {
	if err := s.nak(m, 0); err != nil {
		s.opts.Logger.Debug("nats: nak on unsubscribe", "topic", s.opts.Topic, "err", err)
	}
}

// queue remembers since when each pulled message has been waiting for a
// worker, so that the heartbeats cover it (see [WithPrefetch]).
type queue struct {
	mu sync.Mutex
	at map[*nats.Msg]time.Time
}

func (q *queue) add(m *nats.Msg) {
	q.mu.Lock()
	q.at[m] = time.Now()
	q.mu.Unlock()
}

func (q *queue) remove(m *nats.Msg) {
	q.mu.Lock()
	delete(q.at, m)
	q.mu.Unlock()
}

// waiting appends to ms the messages that have waited at least d.
func (q *queue) waiting(ms []*nats.Msg, d time.Duration) []*nats.Msg {
	q.mu.Lock()
	defer q.mu.Unlock()
	for m, t := range q.at {
		if time.Since(t) >= d {
			ms = append(ms, m)
		}
	}
	return ms
}
