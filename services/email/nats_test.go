package email_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/herald-dev/herald/broker"
	natsbroker "github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/events"
	"github.com/herald-dev/herald/services/email/smtpsink"
)

// TestOnNATSJetStream runs the service on the broker herald up uses: an
// embedded NATS JetStream server. Welcome mails, a duplicate delivery and a
// rejected recipient, on a persistent backend.
func TestOnNATSJetStream(t *testing.T) {
	srv, err := natsserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	openNATS := func(t testing.TB) broker.Broker {
		b, err := natsbroker.New(context.Background(), srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	e := newEnv(t, envOpts{concurrency: 8, broker: openNATS, sink: []smtpsink.Option{
		smtpsink.WithRecipientCheck(func(rcpt string) error {
			if rcpt == "bounce@example.com" {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
			}
			return nil
		}),
	}})
	dlq := make(chan *broker.Message, 4)
	sub, err := e.b.Broker.Subscribe(context.Background(), broker.DefaultDeadLetterTopic(events.TopicUserRegistered),
		func(_ context.Context, m *broker.Message) error { dlq <- m.Clone(); return nil }, broker.Queue("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe(context.Background())

	const n = 40
	var first *broker.Message
	for i := range n {
		m := e.publish(user(i))
		if i == 0 {
			first = m
		}
	}
	// The same event again, as a replay brings it back (JetStream itself
	// drops a plain re-publish of an ID within its duplicate window).
	again := first.Clone()
	again.Header[broker.HeaderReplayedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	if err := e.b.Publish(context.Background(), events.TopicUserRegistered, again); err != nil {
		t.Fatal(err)
	}
	bad := user(n)
	bad.Email = "bounce@example.com"
	bm := e.publish(bad)

	e.waitMails(n)
	select {
	case d := <-dlq:
		if d.ID != bm.ID || !strings.Contains(d.Header.Get(broker.HeaderDeadLetterReason), "550") {
			t.Fatalf("dead letter %s (%q), want %s with the 550", d.ID, d.Header.Get(broker.HeaderDeadLetterReason), bm.ID)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("rejected event not dead-lettered")
	}
	waitFor(t, "the duplicate handled", func() bool { return len(e.b.outcomes(first.ID)) >= 2 })
	mails := e.mails()
	if len(mails) != n {
		t.Fatalf("%d mails, want %d (one per event, the duplicate dropped)", len(mails), n)
	}
	seen := map[string]bool{}
	for _, m := range mails {
		if seen[m.Rcpt[0]] {
			t.Fatalf("two mails to %s", m.Rcpt[0])
		}
		seen[m.Rcpt[0]] = true
	}
}
