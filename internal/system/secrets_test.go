package system_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/herald-dev/herald/broker"
	natsbroker "github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/events"
	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/gen/herald/user/v1/userv1connect"
	"github.com/herald-dev/herald/internal/syncbuf"
	"github.com/herald-dev/herald/internal/system"
	"github.com/herald-dev/herald/registry"
	natsregistry "github.com/herald-dev/herald/registry/nats"
	"github.com/herald-dev/herald/services/email/mailbox"
)

// TestNoSecretsAnywhere runs registrations through the whole system at
// debug log level and greps everything it wrote — every part's log, every
// response and error, every mail, every event and dead letter — for the
// passwords and for bcrypt hashes. It must find none.
func TestNoSecretsAnywhere(t *testing.T) {
	logs := &syncbuf.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mux := new(broker.URLMux)
	mux.Register(natsbroker.Scheme, natsbroker.OpenURL)
	s, err := system.Start(context.Background(), system.Config{
		DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", SMTPListen: "127.0.0.1:0", UserListen: "127.0.0.1:0",
		BcryptCost: 4, Logger: logger,
		EmailBackoff: broker.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2},
		OpenBroker:   mux.Open,
		OpenRegistry: func(ctx context.Context, raw string) (registry.Registry, error) {
			u, err := url.Parse(raw)
			if err != nil {
				return nil, err
			}
			return natsregistry.OpenURL(ctx, u)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), system.DefaultGrace)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	t.Cleanup(stop)

	// Every event on the topic and its DLQ, as delivered.
	var (
		mu   sync.Mutex
		seen []string
	)
	record := func(_ context.Context, m *broker.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%s %v %s", m.ID, m.Header, m.Body))
		return nil
	}
	for _, topic := range []string{events.TopicUserRegistered, broker.DefaultDeadLetterTopic(events.TopicUserRegistered)} {
		if _, err := s.Broker.Subscribe(context.Background(), topic, record, broker.Queue("secrets-audit")); err != nil {
			t.Fatal(err)
		}
	}

	client := userv1connect.NewUserServiceClient(http.DefaultClient, "http://"+s.UserAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out strings.Builder // every response and error the client saw
	passwords := []string{}
	const users = 5
	for i := range users {
		pw := fmt.Sprintf("secret-%d-Tr0ub4dor&3", i)
		passwords = append(passwords, pw)
		res, err := client.Create(ctx, connect.NewRequest(&userv1.CreateRequest{
			Name: fmt.Sprintf("Secret %d", i), Email: fmt.Sprintf("secret%d@example.com", i), Password: pw}))
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		b, _ := protojson.Marshal(res.Msg)
		out.Write(b)
		fmt.Fprintf(&out, "%v\n", res.Header())
		g, err := client.Get(ctx, connect.NewRequest(&userv1.GetRequest{Id: res.Msg.GetUser().GetId()}))
		if err != nil {
			t.Fatal(err)
		}
		b, _ = protojson.Marshal(g.Msg)
		out.Write(b)
		ge, err := client.GetByEmail(ctx, connect.NewRequest(&userv1.GetByEmailRequest{Email: fmt.Sprintf("secret%d@example.com", i)}))
		if err != nil {
			t.Fatal(err)
		}
		b, _ = protojson.Marshal(ge.Msg)
		out.Write(b)
	}
	// Errors carrying a password in the request: a duplicate, a bad
	// password, a bad email.
	for _, req := range []*userv1.CreateRequest{
		{Name: "Dup", Email: "secret0@example.com", Password: passwords[0]},
		{Name: "Short", Email: "short@example.com", Password: "sh0rt"},
		{Name: "Long", Email: "long@example.com", Password: strings.Repeat("L0ng-secret!", 8)},
		{Name: "Bad", Email: "not-an-email", Password: "secret-9-Tr0ub4dor&3"},
	} {
		passwords = append(passwords, req.Password)
		_, err := client.Create(ctx, connect.NewRequest(req))
		if err == nil {
			t.Fatalf("create %s: succeeded", req.Name)
		}
		fmt.Fprintf(&out, "%v\n", err)
	}
	mails := waitMails(t, s.MailboxDir, users)
	var mailText strings.Builder
	for _, m := range mails {
		full, err := mailbox.Get(s.MailboxDir, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&mailText, "%+v\n", full)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= users || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // waiting for deliveries to a recorder
	}
	stop() // the shutdown logs too
	mu.Lock()
	evs := strings.Join(seen, "\n")
	mu.Unlock()
	if strings.Count(evs, "secret") < users {
		t.Fatalf("recorded events do not hold the %d registrations, so checking them proves nothing:\n%s", users, evs)
	}
	logText := logs.String()
	if !strings.Contains(logText, `"level":"DEBUG"`) || !strings.Contains(logText, "welcome mail sent") {
		t.Fatalf("the log has no debug lines or no mail lines, so checking it proves nothing: %.500s", logText)
	}
	for what, text := range map[string]string{"log": logText, "responses": out.String(), "mails": mailText.String(), "events": evs} {
		for _, pw := range passwords {
			if len(pw) >= 5 && strings.Contains(text, pw) {
				t.Errorf("the %s contain a password", what)
			}
		}
		for _, h := range []string{"$2a$", "$2b$", "$2y$"} {
			if strings.Contains(text, h) {
				t.Errorf("the %s contain %q (a bcrypt hash)", what, h)
			}
		}
	}
	t.Logf("checked %d bytes of log, %d of responses, %d of mails, %d of events", len(logText), out.Len(), mailText.Len(), len(evs))
}
