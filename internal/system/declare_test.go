package system_test

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/herald-dev/herald/broker"
	httpbroker "github.com/herald-dev/herald/broker/http"
	"github.com/herald-dev/herald/broker/mem"
	natsbroker "github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/gen/herald/user/v1/userv1connect"
	"github.com/herald-dev/herald/internal/db"
	"github.com/herald-dev/herald/outbox"
	regmem "github.com/herald-dev/herald/registry/mem"
	"github.com/herald-dev/herald/services/email"
	"github.com/herald-dev/herald/services/email/smtpsink"
	"github.com/herald-dev/herald/services/user"
)

// TestEventBeforeTheEmailServiceStarts: the user service runs alone and a
// user registers; its event is published before the email service has ever
// subscribed. The user service declared the email service's group at start,
// so when the email service starts, the welcome mail goes out.
//
// Without the declaration (the "undeclared" runs, on the brokers that route
// by group), the broker drops that event: a RabbitMQ topic exchange drops
// a message no queue is bound to, mem keeps messages only for groups that
// exist, and an HTTP publisher spools only for the groups recorded in the
// registry. Only the mail of a user registered after the email service
// started arrives. NATS and Redis keep every message in the topic's stream
// whether or not a group exists (a group's consumer starts at the first),
// so they have no undeclared run.
func TestEventBeforeTheEmailServiceStarts(t *testing.T) {
	cases := []struct {
		name string
		// clients returns the user service's and the email service's
		// broker clients: two processes' clients, or one bus for mem.
		clients         func(t *testing.T) (users, mails broker.Broker)
		dropsUndeclared bool
	}{
		{"mem", func(t *testing.T) (broker.Broker, broker.Broker) {
			b := mem.New()
			t.Cleanup(func() { _ = b.Close(context.Background()) })
			return b, b
		}, true},
		{"rabbitmq", func(t *testing.T) (broker.Broker, broker.Broker) {
			raw := withQuery(fromEnv(t, "HERALD_TEST_AMQP_URL"), "exchange=t"+broker.NewID()[24:]+"&queue_expiry=2m")
			return openBroker(t, raw), openBroker(t, raw)
		}, true},
		{"nats", func(t *testing.T) (broker.Broker, broker.Broker) {
			srv, err := natsserver.Start(natsserver.WithDataDir(t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Shutdown)
			client := func() broker.Broker {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				b, err := natsbroker.New(ctx, srv.ClientURL())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = b.Close(context.Background()) })
				return b
			}
			return client(), client()
		}, false},
		{"http", func(t *testing.T) (broker.Broker, broker.Broker) {
			store := regmem.NewStore()
			secret := []byte("declare test secret, 32 bytes ok")
			client := func() broker.Broker {
				reg, err := regmem.New(regmem.WithStore(store))
				if err != nil {
					t.Fatal(err)
				}
				b, err := httpbroker.New(reg, httpbroker.WithSpool(t.TempDir()), httpbroker.WithSecret(secret), httpbroker.WithCloseRegistry())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = b.Close(context.Background()) })
				return b
			}
			return client(), client()
		}, true},
		{"redis", func(t *testing.T) (broker.Broker, broker.Broker) {
			raw := withQuery(fromEnv(t, "HERALD_TEST_REDIS_URL"), "prefix=t"+broker.NewID()[24:])
			return openBroker(t, raw), openBroker(t, raw)
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Run("declared", func(t *testing.T) {
				users, mails := c.clients(t)
				box := registerBeforeEmail(t, users, mails, true)
				if got := box.mails(t, 1); got[0] != "early@example.com" {
					t.Fatalf("mail to %s, want the one to the user registered before the email service started", got[0])
				}
			})
			if !c.dropsUndeclared {
				return
			}
			t.Run("undeclared", func(t *testing.T) {
				users, mails := c.clients(t)
				box := registerBeforeEmail(t, users, mails, false)
				// The early event, had it been kept, was published first and
				// is delivered with or before the late one.
				if got := box.mails(t, 1); got[0] != "late@example.com" {
					t.Fatalf("mail to %s, want only the one to the user registered after the email service started", got[0])
				}
			})
		})
	}
}

// mailWait reads a sink's mailbox.
type mailWait struct{ dir string }

// mails waits until the mailbox holds n mails, checks that it holds no
// more, and returns their recipients.
func (w mailWait) mails(t *testing.T, n int) []string {
	t.Helper()
	var to []string
	for _, m := range waitMails(t, w.dir, n) {
		to = append(to, m.Rcpt...)
	}
	return to
}

// registerBeforeEmail starts the user service alone on users (declaring
// the email service's group when declare is set), registers
// early@example.com and waits until its event left the outbox; then starts
// the email service on mails and, without the declaration, registers
// late@example.com once it runs. It returns the mailbox the mails go to.
func registerBeforeEmail(t *testing.T, users, mails broker.Broker, declare bool) mailWait {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	gdb, err := db.Open(ctx, "sqlite://"+filepath.Join(dir, "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := gdb.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	srv, err := user.NewServer(user.Config{
		Listen: "127.0.0.1:0", DB: gdb, BcryptCost: 4, Broker: users, NoDeclareGroups: !declare,
		RelayOptions: []outbox.Option{outbox.WithPollInterval(20 * time.Millisecond)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("user service shutdown: %v", err)
		}
	})
	client := userv1connect.NewUserServiceClient(http.DefaultClient, "http://"+srv.Addr())
	register := func(email string) {
		t.Helper()
		if _, err := client.Create(ctx, connect.NewRequest(&userv1.CreateRequest{Name: "Ada", Email: email, Password: "correct horse battery"})); err != nil {
			t.Fatalf("Create %s: %v", email, err)
		}
	}
	register("early@example.com")
	for deadline := time.Now().Add(20 * time.Second); ; {
		var n int64
		if err := gdb.WithContext(ctx).Table(outbox.Table).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break // published: the broker took it (or dropped it)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the event is still in the outbox after 20s (%d rows)", n)
		}
		time.Sleep(10 * time.Millisecond) // polling a table; nothing to wait on
	}

	sink, err := smtpsink.Start("127.0.0.1:0", filepath.Join(dir, "mailbox"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close(context.Background()) })
	svc, err := email.New(email.Config{
		Broker: mails, SMTPURL: sink.URL(), Database: "sqlite://" + filepath.Join(dir, "email.db"),
		Backoff: broker.Backoff{Initial: 50 * time.Millisecond, Max: time.Second, Multiplier: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("email service stop: %v", err)
		}
	})
	if !declare {
		register("late@example.com")
	}
	return mailWait{dir: sink.Dir()}
}

// openBroker opens a client of the broker at raw, closed when the test
// ends.
func openBroker(t *testing.T, raw string) broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := allBrokers().Open(ctx, raw)
	if err != nil {
		t.Fatalf("open %s: %v", raw, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}

// withQuery adds the query q to the URL raw.
func withQuery(raw, q string) string {
	u, err := url.Parse(raw)
	if err != nil || u.RawQuery == "" {
		return strings.TrimSuffix(raw, "?") + "?" + q
	}
	return raw + "&" + q
}
