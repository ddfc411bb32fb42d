package system_test

import (
	"context"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/herald-dev/herald/broker"
	natsbroker "github.com/herald-dev/herald/broker/nats"
	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/gen/herald/user/v1/userv1connect"
	"github.com/herald-dev/herald/internal/system"
	"github.com/herald-dev/herald/registry"
	natsregistry "github.com/herald-dev/herald/registry/nats"
	"github.com/herald-dev/herald/services/email/mailbox"
)

// start runs the whole system as `herald up` does, on free ports in a
// temporary directory, with the cheapest bcrypt cost: these tests are about
// messaging, not hashing.
func start(t *testing.T, opts ...func(*system.Config)) (*system.System, userv1connect.UserServiceClient) {
	t.Helper()
	mux := new(broker.URLMux)
	mux.Register(natsbroker.Scheme, natsbroker.OpenURL)
	cfg := system.Config{
		DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", SMTPListen: "127.0.0.1:0", UserListen: "127.0.0.1:0",
		AdminListen:  "127.0.0.1:0",
		BcryptCost:   4,
		EmailBackoff: broker.Backoff{Initial: 50 * time.Millisecond, Max: time.Second, Multiplier: 2},
		OpenBroker:   mux.Open,
		OpenRegistry: func(ctx context.Context, raw string) (registry.Registry, error) {
			u, err := url.Parse(raw)
			if err != nil {
				return nil, err
			}
			return natsregistry.OpenURL(ctx, u)
		},
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	s, err := system.Start(context.Background(), cfg)
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
	return s, userv1connect.NewUserServiceClient(http.DefaultClient, "http://"+s.UserAddr)
}

// waitMails waits until the mailbox holds n mails, then a moment more to see
// that no more arrive, and returns them.
func waitMails(t *testing.T, dir string, n int) []mailbox.Mail {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		mails, err := mailbox.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(mails) >= n || time.Now().After(deadline) {
			if len(mails) != n {
				t.Fatalf("mailbox has %d mails, want %d", len(mails), n)
			}
			return mails
		}
		time.Sleep(20 * time.Millisecond) // polling a directory; nothing to wait on
	}
}

func TestRegistrationsSendOneMailEach(t *testing.T) {
	s, client := start(t)
	const users = 200
	password := "correct horse battery staple"
	var wg sync.WaitGroup
	errs := make(chan error, users)
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				_, err := client.Create(context.Background(), connect.NewRequest(&userv1.CreateRequest{
					Name: fmt.Sprintf("User %03d", i), Email: fmt.Sprintf("user%03d@example.com", i), Password: password,
				}))
				if err != nil {
					errs <- fmt.Errorf("user %d: %w", i, err)
				}
			}
		})
	}
	for i := range users {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	mails := waitMails(t, s.MailboxDir, users)
	byAddr := map[string]int{}
	for _, m := range mails {
		full, err := mailbox.Get(s.MailboxDir, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(full.To) != 1 {
			t.Fatalf("mail %s to %v, want one recipient", m.ID, full.To)
		}
		to, err := mail.ParseAddress(full.To[0])
		if err != nil {
			t.Fatalf("mail %s: To %q: %v", m.ID, full.To[0], err)
		}
		addr := to.Address
		byAddr[addr]++
		var i int
		if _, err := fmt.Sscanf(addr, "user%03d@example.com", &i); err != nil {
			t.Fatalf("mail to unexpected address %q", addr)
		}
		name := fmt.Sprintf("User %03d", i)
		if to.Name != name || full.Subject != "Welcome to Herald, "+name || !strings.Contains(full.Body, "Hello "+name+",") {
			t.Fatalf("mail to %s: subject %q, text %q", addr, full.Subject, full.Body)
		}
		if strings.Contains(full.Body, password) || strings.Contains(full.Body, "$2a$") {
			t.Fatalf("mail to %s carries a secret", addr)
		}
	}
	if len(byAddr) != users {
		t.Fatalf("%d distinct recipients, want %d", len(byAddr), users)
	}

	// A second registration of a known address: refused, and no mail.
	_, err := client.Create(context.Background(), connect.NewRequest(&userv1.CreateRequest{
		Name: "Again", Email: "USER007@example.com", Password: password,
	}))
	if connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Fatalf("duplicate email: %v, want already_exists", err)
	}
	got, err := client.GetByEmail(context.Background(), connect.NewRequest(&userv1.GetByEmailRequest{Email: "user007@example.com"}))
	if err != nil || got.Msg.GetUser().GetName() != "User 007" {
		t.Fatalf("GetByEmail: %v, %v", got, err)
	}
	// One more registration flows through after the refused one, so the
	// refused one had every chance to (wrongly) send a mail by now.
	if _, err := client.Create(context.Background(), connect.NewRequest(&userv1.CreateRequest{
		Name: "Last", Email: "last@example.com", Password: password,
	})); err != nil {
		t.Fatal(err)
	}
	waitMails(t, s.MailboxDir, users+1)
}
