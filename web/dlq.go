package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/herald-dev/herald/broker"
)

// DeadLetter is a dead letter as the DLQ view shows it.
type DeadLetter struct {
	ID          string            `json:"id"`
	Topic       string            `json:"topic"`
	Original    string            `json:"original_topic"`
	Queue       string            `json:"queue"`
	Reason      string            `json:"reason"`
	Attempts    string            `json:"attempts"`
	PublishedAt time.Time         `json:"published_at"`
	Header      map[string]string `json:"header"`
	Body        string            `json:"body"`
}

// dlqTopics are the dead-letter topics the console offers.
func (c *Console) dlqTopics() []string {
	var ts []string
	for _, t := range c.cfg.Topics {
		ts = append(ts, broker.DefaultDeadLetterTopic(t))
	}
	return ts
}

// browser returns the DLQ browser and the topic asked for, or writes why
// not.
func (c *Console) browser(w http.ResponseWriter, topic string) (broker.DeadLetterBrowser, bool) {
	d, ok := c.cfg.Broker.(broker.DeadLetterBrowser)
	if !ok {
		fail(w, http.StatusNotImplemented, "unimplemented", "this broker cannot browse dead letters (NATS JetStream, mem and Redis can)")
		return nil, false
	}
	if !slices.Contains(c.dlqTopics(), topic) {
		fail(w, http.StatusBadRequest, "invalid_argument", "topic: not one of the console's dead-letter topics")
		return nil, false
	}
	return d, true
}

func (c *Console) listDLQ(w http.ResponseWriter, r *http.Request) {
	topic := r.URL.Query().Get("topic")
	if topic == "" && len(c.cfg.Topics) > 0 {
		topic = c.dlqTopics()[0]
	}
	d, ok := c.browser(w, topic)
	if !ok {
		return
	}
	msgs, err := d.DeadLetters(r.Context(), topic, 500)
	if err != nil {
		c.log.Warn("web: list dead letters", "topic", topic, "err", err)
		fail(w, http.StatusServiceUnavailable, "unavailable", "the dead letters cannot be read: "+err.Error())
		return
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, DeadLetter{
			ID: m.ID, Topic: topic, Original: m.Header.Get(broker.HeaderDeadLetterTopic), Queue: m.Header.Get(broker.HeaderDeadLetterQueue),
			Reason: m.Header.Get(broker.HeaderDeadLetterReason), Attempts: m.Header.Get(broker.HeaderDeadLetterAttempts),
			PublishedAt: m.PublishedAt, Header: m.Header, Body: string(m.Body),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"topic": topic, "topics": c.dlqTopics(), "dead_letters": out})
}

// dlqAction is the body of replay and purge.
type dlqAction struct {
	Topic string   `json:"topic"`
	IDs   []string `json:"ids"`
}

func (c *Console) readAction(w http.ResponseWriter, r *http.Request) (dlqAction, broker.DeadLetterBrowser, bool) {
	var a dlqAction
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&a); err != nil || len(a.IDs) == 0 {
		fail(w, http.StatusBadRequest, "invalid_argument", "send {topic, ids} with at least one id")
		return a, nil, false
	}
	d, ok := c.browser(w, a.Topic)
	return a, d, ok
}

// replayDLQ publishes each chosen dead letter to its original topic and
// then deletes it: a failure in between only duplicates it.
func (c *Console) replayDLQ(w http.ResponseWriter, r *http.Request) {
	a, d, ok := c.readAction(w, r)
	if !ok {
		return
	}
	msgs, err := d.DeadLetters(r.Context(), a.Topic, 0)
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	var replayed []string
	var errs []error
	for _, m := range msgs {
		if !slices.Contains(a.IDs, m.ID) || slices.Contains(replayed, m.ID) {
			continue
		}
		topic, rm := broker.ReplayOf(m)
		if err := c.cfg.Broker.Publish(r.Context(), topic, rm); err != nil {
			errs = append(errs, err)
			continue
		}
		replayed = append(replayed, m.ID)
	}
	n := 0
	if len(replayed) > 0 {
		if n, err = d.DeleteDeadLetters(r.Context(), a.Topic, replayed); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		c.log.Warn("web: replay dead letters", "topic", a.Topic, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"code": "unavailable", "message": err.Error(), "replayed": replayed, "deleted": n})
		return
	}
	c.log.Info("web: dead letters replayed", "topic", a.Topic, "ids", replayed)
	writeJSON(w, http.StatusOK, map[string]any{"replayed": replayed, "deleted": n})
}

func (c *Console) purgeDLQ(w http.ResponseWriter, r *http.Request) {
	a, d, ok := c.readAction(w, r)
	if !ok {
		return
	}
	n, err := d.DeleteDeadLetters(r.Context(), a.Topic, a.IDs)
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	c.log.Info("web: dead letters purged", "topic", a.Topic, "ids", a.IDs)
	writeJSON(w, http.StatusOK, map[string]any{"deleted": n})
}
