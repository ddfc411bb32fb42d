package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/herald-dev/herald/broker"
)

// Event is one message seen on a watched topic, as the live view shows it.
type Event struct {
	Seq     uint64    `json:"seq"`
	Topic   string    `json:"topic"`
	ID      string    `json:"id"`
	Type    string    `json:"type,omitempty"`
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	// Reason is why a dead letter failed (dead-letter topics only).
	Reason string `json:"reason,omitempty"`
}

// hub keeps the last events seen and fans them out to the live streams.
type hub struct {
	mu      sync.Mutex
	keep    int
	seq     uint64
	recent  []Event
	clients map[chan Event]struct{}
	subs    []broker.Subscription
	done    chan struct{}
	stopped bool
}

func newHub(keep int) *hub {
	return &hub{keep: keep, clients: map[chan Event]struct{}{}, done: make(chan struct{})}
}

func (h *hub) start(ctx context.Context, b broker.Broker, topics []string) error {
	for _, t := range topics {
		for _, topic := range []string{t, broker.DefaultDeadLetterTopic(t)} {
			sub, err := b.Subscribe(ctx, topic, h.handle, broker.Concurrency(4))
			if err != nil {
				return fmt.Errorf("web: watch %s: %w", topic, err)
			}
			h.mu.Lock()
			h.subs = append(h.subs, sub)
			h.mu.Unlock()
		}
	}
	return nil
}

// handle records a message; it never fails, so the console never makes a
// message redelivered.
func (h *hub) handle(_ context.Context, m *broker.Message) error {
	e := Event{Topic: m.Topic, ID: m.ID, Type: m.Header.Get("ce-type"), Attempt: m.Attempt, At: m.PublishedAt,
		Reason: m.Header.Get(broker.HeaderDeadLetterReason)}
	if len(e.Reason) > 300 {
		e.Reason = e.Reason[:300] + "…"
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	e.Seq = h.seq
	h.recent = append(h.recent, e)
	if len(h.recent) > h.keep {
		h.recent = h.recent[len(h.recent)-h.keep:]
	}
	for ch := range h.clients {
		select {
		case ch <- e:
		default: // a slow page misses events rather than slowing the console
		}
	}
	return nil
}

// join returns the recent events and a channel of the next ones.
func (h *hub) join() ([]Event, chan Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan Event, 64)
	h.clients[ch] = struct{}{}
	return append([]Event(nil), h.recent...), ch
}

func (h *hub) leave(ch chan Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, ch)
}

func (h *hub) stop(ctx context.Context) error {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return nil
	}
	h.stopped = true
	close(h.done)
	subs := h.subs
	h.subs = nil
	h.mu.Unlock()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Unsubscribe(ctx))
	}
	return errors.Join(errs...)
}

// events streams the live view as server-sent events: "message" events
// (an [Event]) and, every second, a "stats" event.
func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	recent, ch := c.hub.join()
	defer c.hub.leave(ch)
	send := func(kind string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", kind, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	for _, e := range recent {
		if send("message", e) != nil {
			return
		}
	}
	if send("stats", c.stats()) != nil {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.hub.done:
			return
		case e := <-ch:
			if send("message", e) != nil {
				return
			}
		case <-tick.C:
			if send("stats", c.stats()) != nil {
				return
			}
		}
	}
}

// Stats is the live view's summary: the broker's counters per topic and
// queue group, and the outbox backlog.
type Stats struct {
	Flows   []Flow    `json:"flows"`
	Outbox  []Backlog `json:"outbox"`
	Updated time.Time `json:"updated"`
}

// Flow is the counters of one topic and queue group ("" for publishers and
// broadcast subscribers).
type Flow struct {
	Topic        string  `json:"topic"`
	Queue        string  `json:"queue"`
	Published    float64 `json:"published"`
	Delivered    float64 `json:"delivered"`
	Acked        float64 `json:"acked"`
	Nacked       float64 `json:"nacked"`
	DeadLettered float64 `json:"dead_lettered"`
	// Lag is what the group has not acknowledged, where the backend
	// tells it (-1: unknown).
	Lag float64 `json:"lag"`
}

// Backlog is an outbox's waiting rows.
type Backlog struct {
	Outbox        string  `json:"outbox"`
	Rows          float64 `json:"rows"`
	OldestSeconds float64 `json:"oldest_seconds"`
}

func (c *Console) statsJSON(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, c.stats())
}

func (c *Console) stats() Stats {
	s := Stats{Flows: []Flow{}, Outbox: []Backlog{}, Updated: time.Now().UTC()}
	if c.cfg.Metrics == nil {
		return s
	}
	fams, err := c.cfg.Metrics.Gather()
	if err != nil {
		c.log.Warn("web: gather metrics", "err", err)
	}
	flows := map[[2]string]*Flow{}
	var order [][2]string
	flow := func(m *dto.Metric) *Flow {
		var k [2]string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "topic":
				k[0] = l.GetValue()
			case "queue":
				k[1] = l.GetValue()
			}
		}
		f := flows[k]
		if f == nil {
			f = &Flow{Topic: k[0], Queue: k[1], Lag: -1}
			flows[k] = f
			order = append(order, k)
		}
		return f
	}
	backlogs := map[string]*Backlog{}
	var outboxes []string
	backlog := func(m *dto.Metric) *Backlog {
		name := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "outbox" {
				name = l.GetValue()
			}
		}
		b := backlogs[name]
		if b == nil {
			b = &Backlog{Outbox: name}
			backlogs[name] = b
			outboxes = append(outboxes, name)
		}
		return b
	}
	for _, fam := range fams {
		for _, m := range fam.GetMetric() {
			switch fam.GetName() {
			case "herald_broker_published_total":
				flow(m).Published = m.GetCounter().GetValue()
			case "herald_broker_delivered_total":
				flow(m).Delivered = m.GetCounter().GetValue()
			case "herald_broker_acked_total":
				flow(m).Acked = m.GetCounter().GetValue()
			case "herald_broker_nacked_total":
				flow(m).Nacked = m.GetCounter().GetValue()
			case "herald_broker_dead_lettered_total":
				flow(m).DeadLettered = m.GetCounter().GetValue()
			case "herald_broker_consumer_lag":
				flow(m).Lag = m.GetGauge().GetValue()
			case "herald_outbox_backlog":
				backlog(m).Rows = m.GetGauge().GetValue()
			case "herald_outbox_oldest_age_seconds":
				backlog(m).OldestSeconds = m.GetGauge().GetValue()
			}
		}
	}
	for _, k := range order {
		s.Flows = append(s.Flows, *flows[k])
	}
	for _, n := range outboxes {
		s.Outbox = append(s.Outbox, *backlogs[n])
	}
	return s
}
