package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/herald-dev/herald/broker"
	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/gen/herald/user/v1/userv1connect"
	"github.com/herald-dev/herald/internal/system"
	"github.com/herald-dev/herald/services/email"
	"github.com/herald-dev/herald/services/email/mailbox"
	"github.com/herald-dev/herald/services/email/smtpsink"
)

// runCLI runs herald with args in process, with an empty stdin, and
// returns what it printed.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCLIWithStdin(t, "", args...)
}

// startSystem starts herald up's system in process on c, on loopback ports
// and a temporary data directory, with the CLI's own broker and registry
// openers, and stops it when the test ends.
func startSystem(t *testing.T, c system.Config) *system.System {
	t.Helper()
	c.DataDir, c.NATSListen, c.UserListen = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	c.BcryptCost, c.OpenBroker, c.OpenRegistry = 4, openBroker, openRegistry
	s, err := system.Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), system.DefaultGrace)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}

// dlqList returns the dead letters `herald dlq list --json` prints.
func dlqList(t *testing.T, brokerURL string) []deadLetterJSON {
	t.Helper()
	out, err := runCLI(t, "dlq", "list", "--broker", brokerURL, "--json")
	if err != nil {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	var got []deadLetterJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("dlq list --json: %v\n%s", err, out)
	}
	return got
}

// waitFor polls cond every 20 ms until it holds or d has passed.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling a mailbox and a stream; nothing to wait on
	}
}

// mailsTo counts the mails in dir by recipient address.
func mailsTo(t *testing.T, dir string) map[string]int {
	t.Helper()
	ms, err := mailbox.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, m := range ms {
		for _, to := range m.To {
			if a, err := mail.ParseAddress(to); err == nil {
				n[a.Address]++
			} else {
				n[to]++
			}
		}
	}
	return n
}

// TestDLQPoisonReplayPurge runs the whole system with an SMTP server that
// refuses (451, try later) one recipient: that user's event is retried up to
// the email service's attempts and dead-lettered while other registrations
// keep flowing; `herald dlq list|show` show it; once the server accepts the
// recipient, `herald dlq replay` sends exactly one mail and empties the DLQ;
// `herald dlq purge` deletes another.
func TestDLQPoisonReplayPurge(t *testing.T) {
	var refuse atomic.Bool
	refuse.Store(true)
	sink, err := smtpsink.Start("127.0.0.1:0", t.TempDir(), smtpsink.WithRecipientCheck(func(rcpt string) error {
		if refuse.Load() && strings.Contains(rcpt, "poison") {
			return errors.New("mailbox busy") // 451: temporary, so the event is retried
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close(context.Background()) })

	s := startSystem(t, system.Config{
		SMTPURL:      sink.URL(),
		EmailBackoff: broker.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2},
	})
	client := userv1connect.NewUserServiceClient(http.DefaultClient, "http://"+s.UserAddr)
	register := func(name, addr string) string {
		t.Helper()
		res, err := client.Create(context.Background(), connect.NewRequest(&userv1.CreateRequest{
			Name: name, Email: addr, Password: "correct horse battery staple"}))
		if err != nil {
			t.Fatalf("register %s: %v", addr, err)
		}
		return res.Msg.GetUser().GetId()
	}

	if got := dlqList(t, s.BrokerURL); len(got) != 0 {
		t.Fatalf("DLQ not empty at the start: %+v", got)
	}
	out, err := runCLI(t, "dlq", "list", "--broker", s.BrokerURL)
	if err != nil || !strings.Contains(out, "no dead letters in user.registered.dlq") {
		t.Fatalf("dlq list on an empty DLQ: %v\n%s", err, out)
	}

	register("Poison Pill", "poison@example.com")
	for i := range 5 {
		register(fmt.Sprintf("User %d", i), fmt.Sprintf("user%d@example.com", i))
	}
	// The others flow while the poison is retried.
	waitFor(t, 30*time.Second, "5 mails", func() bool { return len(mailsTo(t, sink.Dir())) == 5 })
	var dead []deadLetterJSON
	waitFor(t, 30*time.Second, "the poison event in the DLQ", func() bool {
		dead = dlqList(t, s.BrokerURL)
		return len(dead) == 1
	})
	d := dead[0]
	if d.OriginalTopic != "user.registered" || d.Queue != email.Queue || d.Attempts != fmt.Sprint(email.DefaultMaxAttempts) ||
		!strings.Contains(d.Reason, "451") || !strings.Contains(d.Body, "poison@example.com") {
		t.Fatalf("dead letter %+v", d)
	}
	if strings.Contains(d.Body, "correct horse") || strings.Contains(d.Body, "$2a$") {
		t.Fatalf("dead letter carries a secret: %s", d.Body)
	}
	if n := mailsTo(t, sink.Dir())["poison@example.com"]; n != 0 {
		t.Fatalf("%d mails to the refused recipient", n)
	}

	out, err = runCLI(t, "dlq", "list", "--broker", s.BrokerURL)
	if err != nil || !strings.Contains(out, d.ID) || !strings.Contains(out, "user.registered") {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	out, err = runCLI(t, "dlq", "show", d.ID[:len(d.ID)-4], "--broker", s.BrokerURL)
	if err != nil || !strings.Contains(out, d.ID) || !strings.Contains(out, "poison@example.com") || !strings.Contains(out, broker.HeaderDeadLetterReason) {
		t.Fatalf("dlq show by prefix: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "dlq", "show", "nope", "--broker", s.BrokerURL); err == nil || !strings.Contains(err.Error(), `no dead letter "nope"`) {
		t.Fatalf("dlq show nope: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "dlq", "replay", "--broker", s.BrokerURL); err == nil {
		t.Fatalf("dlq replay without IDs or --all succeeded:\n%s", out)
	}

	// Fix the cause, then replay: one mail, DLQ empty.
	refuse.Store(false)
	out, err = runCLI(t, "dlq", "replay", "--all", "--json", "--broker", s.BrokerURL)
	if err != nil {
		t.Fatalf("dlq replay: %v\n%s", err, out)
	}
	var res replayResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Replayed) != 1 || res.Replayed[0].ID != d.ID ||
		res.Replayed[0].To != "user.registered" || len(res.Failed) != 0 {
		t.Fatalf("dlq replay --json: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "the replayed mail", func() bool { return mailsTo(t, sink.Dir())["poison@example.com"] == 1 })
	if got := dlqList(t, s.BrokerURL); len(got) != 0 {
		t.Fatalf("DLQ after replay: %+v", got)
	}
	// Replaying the same event again (e.g. a crash between publish and
	// delete) sends no second mail: the email service deduplicates by ID.
	if err := s.Broker.Publish(context.Background(), "user.registered", func() *broker.Message {
		_, m := broker.ReplayOf(&broker.Message{ID: d.ID, Header: broker.Header(d.Header), Body: []byte(d.Body)})
		return m
	}()); err != nil {
		t.Fatal(err)
	}

	// Purge: a second poison, deleted for good.
	refuse.Store(true)
	register("Poison Two", "poison2@example.com")
	waitFor(t, 30*time.Second, "the second poison event in the DLQ", func() bool { return len(dlqList(t, s.BrokerURL)) == 1 })
	if out, err := runCLI(t, "dlq", "purge", "--all", "--broker", s.BrokerURL); err == nil || len(dlqList(t, s.BrokerURL)) != 1 {
		t.Fatalf("purge without --yes and no answer: %v\n%s", err, out)
	}
	out, err = runCLI(t, "dlq", "purge", "--all", "--yes", "--broker", s.BrokerURL)
	if err != nil || !strings.Contains(out, "purged 1 dead letters") {
		t.Fatalf("dlq purge: %v\n%s", err, out)
	}
	if got := dlqList(t, s.BrokerURL); len(got) != 0 {
		t.Fatalf("DLQ after purge: %+v", got)
	}
	n := mailsTo(t, sink.Dir())
	if n["poison@example.com"] != 1 || n["poison2@example.com"] != 0 || len(n) != 6 {
		t.Fatalf("mails by recipient at the end: %v", n)
	}
	for addr, c := range n {
		if c != 1 {
			t.Errorf("%d mails to %s", c, addr)
		}
	}
}

func TestDLQBrokerAndTopicFlags(t *testing.T) {
	// mem:// can browse (an empty bus); an unknown scheme and a bad topic fail.
	out, err := runCLI(t, "dlq", "list", "--broker", "mem://")
	if err != nil || !strings.Contains(out, "no dead letters") {
		t.Fatalf("dlq list on mem://: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "dlq", "list", "--broker", "bogus://x"); err == nil {
		t.Fatal("dlq list on an unknown scheme succeeded")
	}
	if _, err := runCLI(t, "dlq", "list", "--broker", "mem://", "--topic", "bad topic"); err == nil || !strings.Contains(err.Error(), "--topic") {
		t.Fatalf("bad topic: %v", err)
	}
}

// TestDLQBackendWithoutBrowser runs `herald dlq list` against a backend
// that cannot browse a topic (Kafka, on an in-process kfake cluster): a
// clear error naming the capability and the way out.
func TestDLQBackendWithoutBrowser(t *testing.T) {
	k, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	_, err = runCLI(t, "dlq", "list", "--broker", "kafka://"+k.ListenAddrs()[0])
	if err == nil {
		t.Fatal("dlq list on kafka:// succeeded")
	}
	for _, want := range []string{"kafka:// backend cannot browse dead letters", "broker.DeadLetterBrowser", "subscribe to user.registered.dlq"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
