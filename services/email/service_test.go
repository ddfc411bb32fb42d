package email_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/events"
	"github.com/herald-dev/herald/internal/syncbuf"
	"github.com/herald-dev/herald/services/email"
	"github.com/herald-dev/herald/services/email/mailbox"
	"github.com/herald-dev/herald/services/email/smtpsink"
)

// outcome is one handler run the recording broker saw.
type outcome struct {
	id      string
	attempt int
	err     error
}

// recorder wraps a real broker and records what every handler returned, so
// tests can wait for an event to be handled instead of sleeping.
type recorder struct {
	broker.Broker
	mu   sync.Mutex
	runs []outcome
}

func (r *recorder) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	return r.Broker.Subscribe(ctx, topic, func(ctx context.Context, m *broker.Message) error {
		err := h(ctx, m)
		r.mu.Lock()
		r.runs = append(r.runs, outcome{m.ID, m.Attempt, err})
		r.mu.Unlock()
		return err
	}, opts...)
}

func (r *recorder) outcomes(id string) []outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []outcome
	for _, o := range r.runs {
		if o.id == id {
			out = append(out, o)
		}
	}
	return out
}

// waitFor polls cond until it holds or 20s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

type env struct {
	t    testing.TB
	b    *recorder
	sink *smtpsink.Sink
	svc  *email.Service
	logs *syncbuf.Buffer
}

type envOpts struct {
	broker      func(t testing.TB) broker.Broker // broker/mem when nil
	sink        []smtpsink.Option
	smtpURL     func(sink *smtpsink.Sink) string
	concurrency int
	mailer      []email.MailerOption
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	sink, err := smtpsink.Start("127.0.0.1:0", t.TempDir(), o.sink...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close(context.Background()) })
	var inner broker.Broker = mem.New()
	if o.broker != nil {
		inner = o.broker(t)
	}
	b := &recorder{Broker: inner}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	logs := &syncbuf.Buffer{}
	smtpURL := sink.URL()
	if o.smtpURL != nil {
		smtpURL = o.smtpURL(sink)
	}
	svc, err := email.New(email.Config{
		Broker:        b,
		SMTPURL:       smtpURL,
		From:          "Herald <welcome@herald.local>",
		Database:      "sqlite://" + filepath.Join(t.TempDir(), "email.db"),
		Concurrency:   o.concurrency,
		MaxAttempts:   5,
		Backoff:       broker.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2},
		SendTimeout:   5 * time.Second,
		MailerOptions: o.mailer,
		Logger:        slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return &env{t: t, b: b, sink: sink, svc: svc, logs: logs}
}

func (e *env) publish(u events.UserRegistered) *broker.Message {
	e.t.Helper()
	m, err := events.NewUserRegistered("herald/test", u)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.b.Publish(context.Background(), events.TopicUserRegistered, m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) mails() []mailbox.Mail {
	e.t.Helper()
	ms, err := mailbox.List(e.sink.Dir())
	if err != nil {
		e.t.Fatal(err)
	}
	return ms
}

func (e *env) waitMails(n int) []mailbox.Mail {
	e.t.Helper()
	waitFor(e.t, fmt.Sprintf("%d mails", n), func() bool { return len(e.mails()) >= n })
	return e.mails()
}

func user(i int) events.UserRegistered {
	return events.UserRegistered{
		ID: fmt.Sprintf("u-%d", i), Name: fmt.Sprintf("User Número %d", i), Email: fmt.Sprintf("user%d@example.com", i),
		RegisteredAt: time.Now().UTC(),
	}
}

func TestWelcomeMails(t *testing.T) {
	e := newEnv(t, envOpts{concurrency: 8})
	const n = 60
	for i := range n {
		e.publish(user(i))
	}
	mails := e.waitMails(n)
	if len(mails) != n {
		t.Fatalf("%d mails, want %d", len(mails), n)
	}
	byRcpt := map[string]mailbox.Mail{}
	for _, m := range mails {
		if len(m.Rcpt) != 1 {
			t.Fatalf("mail %s has envelope recipients %v", m.ID, m.Rcpt)
		}
		if _, dup := byRcpt[m.Rcpt[0]]; dup {
			t.Fatalf("two mails to %s", m.Rcpt[0])
		}
		byRcpt[m.Rcpt[0]] = m
	}
	for i := range n {
		u := user(i)
		m, ok := byRcpt[u.Email]
		if !ok {
			t.Fatalf("no mail to %s", u.Email)
		}
		full, err := mailbox.Get(e.sink.Dir(), m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if full.Subject != "Welcome to Herald, "+u.Name {
			t.Errorf("subject %q", full.Subject)
		}
		if len(full.To) != 1 || full.To[0] != u.Name+" <"+u.Email+">" {
			t.Errorf("To %q", full.To)
		}
		if full.From != "Herald <welcome@herald.local>" {
			t.Errorf("From %q", full.From)
		}
		if !strings.HasPrefix(full.Body, "Hello "+u.Name+",\n") || !strings.Contains(full.Body, "Your account for "+u.Email+" is ready.") {
			t.Errorf("body %q", full.Body)
		}
		if full.MessageID == "" || !strings.HasSuffix(full.MessageID, "@herald.local") || full.Date.IsZero() {
			t.Errorf("Message-ID %q, Date %v", full.MessageID, full.Date)
		}
	}
}

func TestRedeliveredEventSendsOneMail(t *testing.T) {
	e := newEnv(t, envOpts{concurrency: 4})
	m := e.publish(user(1))
	// The same event again, as a broker redelivery or a DLQ replay would
	// bring it, twice.
	for range 2 {
		if err := e.b.Publish(context.Background(), events.TopicUserRegistered, m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three successful runs of the event", func() bool {
		ok := 0
		for _, o := range e.b.outcomes(m.ID) {
			if o.err == nil {
				ok++
			}
		}
		return ok == 3
	})
	if got := len(e.mails()); got != 1 {
		t.Fatalf("%d mails for one event delivered three times, want 1", got)
	}
	if e.sink.Accepted() != 1 {
		t.Fatalf("sink accepted %d mails, want 1", e.sink.Accepted())
	}
}

// TestSentRecordSurvivesRestart: the sent-mail record is in the database, so
// a new service on the same database does not resend.
func TestSentRecordSurvivesRestart(t *testing.T) {
	sink, err := smtpsink.Start("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close(context.Background())
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "email.db")
	b := &recorder{Broker: mem.New()}
	defer b.Close(context.Background())
	m, _ := events.NewUserRegistered("herald/test", user(7))
	for round := 1; round <= 2; round++ {
		svc, err := email.New(email.Config{Broker: b, SMTPURL: sink.URL(), Database: dbURL})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(context.Background(), events.TopicUserRegistered, m); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the event handled", func() bool { return len(b.outcomes(m.ID)) == round })
		if err := svc.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if sink.Accepted() != 1 {
		t.Fatalf("sink accepted %d mails over two service lives, want 1", sink.Accepted())
	}
}

func TestRejectedRecipientGoesToDLQ(t *testing.T) {
	e := newEnv(t, envOpts{concurrency: 2, sink: []smtpsink.Option{
		smtpsink.WithRecipientCheck(func(rcpt string) error {
			if rcpt == "bounce@example.com" {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
			}
			return nil
		}),
	}})
	dlq := make(chan *broker.Message, 4)
	sub, err := e.b.Broker.Subscribe(context.Background(), broker.DefaultDeadLetterTopic(events.TopicUserRegistered),
		func(_ context.Context, m *broker.Message) error { dlq <- m.Clone(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe(context.Background())

	e.publish(user(1))
	bad := user(2)
	bad.Email = "bounce@example.com"
	bm := e.publish(bad)
	for i := 3; i <= 10; i++ {
		e.publish(user(i))
	}
	select {
	case d := <-dlq:
		if d.ID != bm.ID {
			t.Fatalf("dead letter %s, want the rejected event %s", d.ID, bm.ID)
		}
		if r := d.Header.Get(broker.HeaderDeadLetterReason); !strings.Contains(r, "550") {
			t.Fatalf("dead-letter reason %q does not name the 550", r)
		}
		if u, err := events.DecodeUserRegistered(d); err != nil || u.Email != "bounce@example.com" {
			t.Fatalf("dead letter does not carry the event: %+v, %v", u, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("rejected event not dead-lettered")
	}
	mails := e.waitMails(9)
	if len(mails) != 9 {
		t.Fatalf("%d mails, want the 9 deliverable ones", len(mails))
	}
	if runs := e.b.outcomes(bm.ID); len(runs) != 1 || !broker.IsPermanent(runs[0].err) {
		t.Fatalf("rejected event: %d runs (%v), want one permanent failure", len(runs), runs)
	}
}

func TestTransientFailureIsRetried(t *testing.T) {
	var mu sync.Mutex
	refused := 0
	e := newEnv(t, envOpts{concurrency: 1, sink: []smtpsink.Option{
		smtpsink.WithRecipientCheck(func(rcpt string) error {
			mu.Lock()
			defer mu.Unlock()
			if rcpt == "flaky@example.com" && refused < 2 {
				refused++
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
			}
			return nil
		}),
	}})
	u := user(1)
	u.Email = "flaky@example.com"
	m := e.publish(u)
	mails := e.waitMails(1)
	waitFor(t, "the event acked", func() bool {
		runs := e.b.outcomes(m.ID)
		return len(runs) > 0 && runs[len(runs)-1].err == nil
	})
	runs := e.b.outcomes(m.ID)
	if len(runs) != 3 || runs[0].err == nil || runs[1].err == nil || runs[2].err != nil ||
		runs[0].attempt != 1 || runs[2].attempt != 3 || broker.IsPermanent(runs[0].err) {
		t.Fatalf("runs %+v; want two transient failures then a success on attempt 3", runs)
	}
	if len(mails) != 1 || mails[0].Rcpt[0] != "flaky@example.com" || e.sink.Accepted() != 1 {
		t.Fatalf("mails %+v (accepted %d), want exactly one", mails, e.sink.Accepted())
	}
}

func TestServerDownThenUp(t *testing.T) {
	// A port where nothing listens: the service retries, then the event
	// is dead-lettered after MaxAttempts (5) — never lost, never silent.
	e := newEnv(t, envOpts{concurrency: 1, smtpURL: func(*smtpsink.Sink) string { return "smtp://127.0.0.1:1" }})
	m := e.publish(user(1))
	waitFor(t, "five attempts", func() bool { return len(e.b.outcomes(m.ID)) == 5 })
	for _, o := range e.b.outcomes(m.ID) {
		if o.err == nil || broker.IsPermanent(o.err) {
			t.Fatalf("connection refused gave %v; want a transient error", o.err)
		}
	}
}

func TestUndecodableEventGoesToDLQ(t *testing.T) {
	e := newEnv(t, envOpts{concurrency: 1})
	dlq := make(chan *broker.Message, 1)
	sub, err := e.b.Broker.Subscribe(context.Background(), broker.DefaultDeadLetterTopic(events.TopicUserRegistered),
		func(_ context.Context, m *broker.Message) error { dlq <- m.Clone(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe(context.Background())
	m, _ := events.NewUserRegistered("herald/test", user(1))
	m.Body = []byte(`{"id":"u-1","email":"not an address","registered_at":"2026-01-01T00:00:00Z"}`)
	if err := e.b.Publish(context.Background(), events.TopicUserRegistered, m); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-dlq:
		if d.ID != m.ID || !strings.Contains(d.Header.Get(broker.HeaderDeadLetterReason), "bad event") {
			t.Fatalf("dead letter %s reason %q", d.ID, d.Header.Get(broker.HeaderDeadLetterReason))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("undecodable event not dead-lettered")
	}
	if runs := e.b.outcomes(m.ID); len(runs) != 1 {
		t.Fatalf("undecodable event ran %d times, want 1", len(runs))
	}
	if n := e.sink.Accepted(); n != 0 {
		t.Fatalf("%d mails sent for an undecodable event", n)
	}
}

func TestPasswordNeverLogged(t *testing.T) {
	const password = "pw-S3CRET/x:y@z"
	e := newEnv(t, envOpts{
		concurrency: 1,
		sink:        []smtpsink.Option{smtpsink.WithAuth("herald", password), smtpsink.WithInsecureAuth()},
		smtpURL: func(s *smtpsink.Sink) string {
			return "smtp://" + url.UserPassword("herald", password).String() + "@" + s.Addr()
		},
	})
	e.publish(user(1))
	if m := e.waitMails(1); len(m) != 1 {
		t.Fatalf("%d mails", len(m))
	}
	// And a failing login, whose errors are logged too.
	bad := newEnv(t, envOpts{
		concurrency: 1,
		sink:        []smtpsink.Option{smtpsink.WithAuth("herald", "other"), smtpsink.WithInsecureAuth()},
		smtpURL: func(s *smtpsink.Sink) string {
			return "smtp://" + url.UserPassword("herald", password).String() + "@" + s.Addr()
		},
	})
	bm := bad.publish(user(2))
	waitFor(t, "failed attempts", func() bool { return len(bad.b.outcomes(bm.ID)) >= 2 })

	for _, logs := range []string{e.logs.String(), bad.logs.String()} {
		if !strings.Contains(logs, "smtp://herald:xxxxx@") {
			t.Fatalf("the log does not show the redacted URL; log:\n%s", logs)
		}
		for _, form := range []string{password, url.QueryEscape(password), url.PathEscape(password), "S3CRET"} {
			if strings.Contains(logs, form) {
				t.Fatalf("password (as %q) in the log:\n%s", form, logs)
			}
		}
	}
	for _, o := range bad.b.outcomes(bm.ID) {
		if o.err == nil || strings.Contains(o.err.Error(), "S3CRET") {
			t.Fatalf("handler error %v", o.err)
		}
	}
	if !strings.Contains(bad.logs.String(), "535") {
		t.Fatalf("the failed login is not in the log:\n%s", bad.logs.String())
	}
}

func TestNewValidates(t *testing.T) {
	b := mem.New()
	defer b.Close(context.Background())
	good := email.Config{Broker: b, SMTPURL: "smtp://127.0.0.1:2525", Database: "sqlite://:memory:"}
	if _, err := email.New(good); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := map[string]func(*email.Config){
		"no broker":   func(c *email.Config) { c.Broker = nil },
		"no smtp":     func(c *email.Config) { c.SMTPURL = "" },
		"bad smtp":    func(c *email.Config) { c.SMTPURL = "http://x:pw-secret@h" },
		"no database": func(c *email.Config) { c.Database = "" },
		"bad from":    func(c *email.Config) { c.From = "not an address" },
		"concurrency": func(c *email.Config) { c.Concurrency = -1 },
	}
	for name, mutate := range cases {
		c := good
		mutate(&c)
		_, err := email.New(c)
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), "pw-secret") {
			t.Errorf("%s: password in error %v", name, err)
		}
	}
}

func TestStopIsIdempotentAndStartOnce(t *testing.T) {
	e := newEnv(t, envOpts{})
	if err := e.svc.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
	if err := e.svc.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}
