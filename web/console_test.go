package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/metrics"
	"github.com/herald-dev/herald/services/email/mailbox"
	"github.com/herald-dev/herald/web"
)

type env struct {
	srv *httptest.Server
	b   broker.Broker
	box string
}

func newConsole(t *testing.T, cfg web.Config) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	b := m.Wrap(mem.New())
	t.Cleanup(func() { b.Close(context.Background()) })
	cfg.Broker, cfg.Metrics, cfg.Topics = b, reg, []string{"t.a"}
	if cfg.MailboxDir == "" {
		cfg.MailboxDir = t.TempDir()
	}
	c, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(func() {
		c.Stop(context.Background()) // ends the live streams first
		srv.Close()
	})
	return &env{srv: srv, b: b, box: cfg.MailboxDir}
}

func (e *env) call(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return res.StatusCode
}

func TestPageAndHeaders(t *testing.T) {
	e := newConsole(t, web.Config{})
	for _, p := range []string{"/", "/app.js", "/style.css"} {
		res, err := http.Get(e.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || len(body) == 0 {
			t.Fatalf("GET %s: %s", p, res.Status)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q", p, csp)
		}
		if strings.Contains(string(body), "https://") {
			t.Errorf("GET %s refers to a remote URL (no CDN allowed)", p)
		}
	}
}

func TestUsersAndRegisterWithoutSources(t *testing.T) {
	e := newConsole(t, web.Config{})
	var apiErr struct{ Code, Message string }
	if code := e.call(t, "GET", "/api/users", "", &apiErr); code != http.StatusNotImplemented || apiErr.Code != "unimplemented" {
		t.Fatalf("users without a database: %d %+v", code, apiErr)
	}
	if code := e.call(t, "POST", "/api/users", `{"name":"a"}`, &apiErr); code != http.StatusNotImplemented {
		t.Fatalf("register without a user service: %d", code)
	}
}

func TestUsersSearch(t *testing.T) {
	var gotQ string
	e := newConsole(t, web.Config{Users: func(_ context.Context, q string, limit int) ([]web.User, error) {
		gotQ = q
		if q == "down" {
			return nil, errors.New("database down")
		}
		return []web.User{{ID: "1", Name: "Ada", Email: "ada@example.com"}}, nil
	}})
	var users []web.User
	if code := e.call(t, "GET", "/api/users?q=+ada+", "", &users); code != 200 || len(users) != 1 || gotQ != "ada" {
		t.Fatalf("search: %d %v (q %q)", code, users, gotQ)
	}
	var apiErr struct{ Code, Message string }
	if code := e.call(t, "GET", "/api/users?q=down", "", &apiErr); code != http.StatusServiceUnavailable || strings.Contains(apiErr.Message, "database down") {
		t.Fatalf("failing database: %d %+v (the cause stays in the log)", code, apiErr)
	}
}

func TestMailbox(t *testing.T) {
	e := newConsole(t, web.Config{})
	id, err := mailbox.Deliver(e.box, strings.NewReader("From: a@example.com\r\nTo: b@example.com\r\nSubject: Hi <b>\r\n\r\nHello <script>\r\n"), 0)
	if err != nil {
		t.Fatal(err)
	}
	var list []mailbox.Mail
	if code := e.call(t, "GET", "/api/mails", "", &list); code != 200 || len(list) != 1 || list[0].ID != id {
		t.Fatalf("mails: %d %+v", code, list)
	}
	var m mailbox.Mail
	if code := e.call(t, "GET", "/api/mails/"+id, "", &m); code != 200 || m.Subject != "Hi <b>" || !strings.Contains(m.Body, "Hello <script>") {
		t.Fatalf("mail: %d %+v", code, m)
	}
	if code := e.call(t, "GET", "/api/mails/..%2f..%2fetc", "", nil); code != http.StatusBadRequest && code != http.StatusNotFound {
		t.Fatalf("bad id: %d", code)
	}
}

// TestLiveEvents reads the server-sent events: a stats event first, then
// each message published on a watched topic.
func TestLiveEvents(t *testing.T) {
	e := newConsole(t, web.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(res.Body)
	next := func() (string, string) {
		var kind, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				kind = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				data = line[len("data: "):]
			case line == "" && kind != "":
				return kind, data
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return "", ""
	}
	if kind, _ := next(); kind != "stats" {
		t.Fatalf("first event %q, want stats", kind)
	}
	m := &broker.Message{Header: broker.Header{"ce-type": "x.y"}, Body: []byte("{}")}
	if err := e.b.Publish(ctx, "t.a", m); err != nil {
		t.Fatal(err)
	}
	for {
		kind, data := next()
		if kind == "stats" {
			var s web.Stats
			if err := json.Unmarshal([]byte(data), &s); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var ev web.Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.ID != m.ID || ev.Topic != "t.a" || ev.Type != "x.y" || ev.Attempt != 1 {
			t.Fatalf("event %+v, want message %s on t.a", ev, m.ID)
		}
		break
	}
	// The counters include the publish.
	var s web.Stats
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.call(t, "GET", "/api/stats", "", &s)
		if len(s.Flows) > 0 && s.Flows[0].Topic == "t.a" && s.Flows[0].Published == 1 && s.Flows[0].Acked == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", s)
		}
		time.Sleep(10 * time.Millisecond) // polling the counters; nothing to wait on
	}
}

func TestDeadLetters(t *testing.T) {
	e := newConsole(t, web.Config{})
	ctx := context.Background()
	o, err := broker.NewSubscribeOptions("t.a", func(context.Context, *broker.Message) error { return nil }, broker.Queue("g"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, body := range []string{"one", "two"} {
		m := &broker.Message{ID: broker.NewID(), Topic: "t.a", Attempt: 3, Header: broker.Header{"k": "v"}, Body: []byte(body)}
		if err := e.b.Publish(ctx, "t.a.dlq", broker.NewDeadLetter(m, o, errors.New("broken "+body))); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	type listing struct {
		Topic       string           `json:"topic"`
		DeadLetters []web.DeadLetter `json:"dead_letters"`
	}
	var l listing
	if code := e.call(t, "GET", "/api/dlq", "", &l); code != 200 || l.Topic != "t.a.dlq" || len(l.DeadLetters) != 2 {
		t.Fatalf("list: %d %+v", code, l)
	}
	d := l.DeadLetters[0]
	if d.ID != ids[0] || d.Reason != "broken one" || d.Original != "t.a" || d.Queue != "g" || d.Attempts != "3" || d.Body != "one" {
		t.Fatalf("dead letter %+v", d)
	}

	// Replay: back on t.a with its ID, and gone from the DLQ.
	got := make(chan *broker.Message, 1)
	if _, err := e.b.Subscribe(ctx, "t.a", func(_ context.Context, m *broker.Message) error { got <- m.Clone(); return nil }, broker.Queue("check")); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Replayed []string `json:"replayed"`
		Deleted  int      `json:"deleted"`
	}
	if code := e.call(t, "POST", "/api/dlq/replay", `{"topic":"t.a.dlq","ids":["`+ids[0]+`"]}`, &res); code != 200 || len(res.Replayed) != 1 || res.Deleted != 1 {
		t.Fatalf("replay: %d %+v", code, res)
	}
	select {
	case m := <-got:
		if m.ID != ids[0] || string(m.Body) != "one" || m.Header.Get("k") != "v" || m.Header.Get(broker.HeaderReplayedAt) == "" || m.Header.Get(broker.HeaderDeadLetterReason) != "" {
			t.Fatalf("replayed message %+v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the replayed message did not arrive")
	}
	// Purge the other.
	if code := e.call(t, "POST", "/api/dlq/purge", `{"topic":"t.a.dlq","ids":["`+ids[1]+`"]}`, &res); code != 200 || res.Deleted != 1 {
		t.Fatalf("purge: %d %+v", code, res)
	}
	if e.call(t, "GET", "/api/dlq?topic=t.a.dlq", "", &l); len(l.DeadLetters) != 0 {
		t.Fatalf("after replay and purge: %+v", l.DeadLetters)
	}
	// Only the console's dead-letter topics, and ids are required.
	for _, body := range []string{`{"topic":"other.dlq","ids":["x"]}`, `{"topic":"t.a.dlq","ids":[]}`, `not json`} {
		if code := e.call(t, "POST", "/api/dlq/purge", body, nil); code != http.StatusBadRequest {
			t.Errorf("purge %s: %d, want 400", body, code)
		}
	}
}

func TestDeadLettersNeedABrowser(t *testing.T) {
	b := struct{ broker.Broker }{mem.New()} // hides DeadLetterBrowser
	t.Cleanup(func() { b.Close(context.Background()) })
	c, err := web.New(web.Config{Broker: b, Topics: []string{"t.a"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/api/dlq")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotImplemented {
		t.Fatalf("DLQ on a broker that cannot browse: %s", res.Status)
	}
}

func TestHealth(t *testing.T) {
	e := newConsole(t, web.Config{Health: []web.Check{
		{Name: "good", Probe: func(context.Context) (string, error) { return "fine", nil }},
		{Name: "bad", Probe: func(context.Context) (string, error) { return "", errors.New("refused") }},
	}})
	var h []struct {
		Name   string `json:"name"`
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	}
	if code := e.call(t, "GET", "/api/health", "", &h); code != 200 || len(h) != 2 ||
		h[0].Name != "good" || !h[0].OK || h[0].Detail != "fine" || h[1].OK || h[1].Detail != "refused" {
		t.Fatalf("health: %d %+v", code, h)
	}
}

func TestNewNeedsBroker(t *testing.T) {
	if _, err := web.New(web.Config{}); err == nil {
		t.Fatal("New without a broker succeeded")
	}
}

// TestCrossSiteChangesRefused: a POST that is not JSON, or that comes from
// another origin, changes nothing.
func TestCrossSiteChangesRefused(t *testing.T) {
	e := newConsole(t, web.Config{})
	ctx := context.Background()
	m := &broker.Message{ID: broker.NewID(), Topic: "t.a", Attempt: 1}
	o, _ := broker.NewSubscribeOptions("t.a", func(context.Context, *broker.Message) error { return nil })
	if err := e.b.Publish(ctx, "t.a.dlq", broker.NewDeadLetter(m, o, errors.New("x"))); err != nil {
		t.Fatal(err)
	}
	body := `{"topic":"t.a.dlq","ids":["` + m.ID + `"]}`
	for name, hdr := range map[string]map[string]string{
		"form":         {"Content-Type": "text/plain"},
		"other origin": {"Content-Type": "application/json", "Origin": "http://evil.example"},
	} {
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/dlq/purge", strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode < 400 {
			t.Errorf("%s: %s, want refused", name, res.Status)
		}
	}
	var l struct {
		DeadLetters []web.DeadLetter `json:"dead_letters"`
	}
	if e.call(t, "GET", "/api/dlq", "", &l); len(l.DeadLetters) != 1 {
		t.Fatalf("dead letters after refused purges: %d, want 1", len(l.DeadLetters))
	}
	// The same origin is fine.
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/dlq/purge", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", e.srv.URL)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("same-origin purge: %s", res.Status)
	}
}
