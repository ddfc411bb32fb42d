package user_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/herald-dev/herald/broker"
	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/gen/herald/user/v1/userv1connect"
	"github.com/herald-dev/herald/internal/dbtest"
	regmem "github.com/herald-dev/herald/registry/mem"
	"github.com/herald-dev/herald/services/user"
)

// TestRegisterAndRead registers users and reads them back by id and by
// email, on every database engine, and checks the events and the logs.
func TestRegisterAndRead(t *testing.T) {
	dbtest.Run(t, tables, func(t *testing.T, url string) {
		ctx := context.Background()
		e := start(t, url)
		var sec secrets

		u, err := create(ctx, e.client, "", "  Ada Lovelace ", " Ada.Lovelace@Example.COM ", sec.add("correct horse battery"))
		if err != nil {
			t.Fatal(err)
		}
		if u.GetName() != "Ada Lovelace" || u.GetEmail() != "Ada.Lovelace@example.com" || u.GetId() == "" || u.GetCreatedAt() == nil {
			t.Fatalf("created %v", u)
		}
		if _, err := create(ctx, e.client, "given_ID-1", "Bob", "bob@example.com", sec.add("hunter2hunter2")); err != nil {
			t.Fatal(err)
		}

		got, err := e.client.Get(ctx, connect.NewRequest(&userv1.GetRequest{Id: u.GetId()}))
		if err != nil {
			t.Fatal(err)
		}
		if g := got.Msg.GetUser(); g.GetId() != u.GetId() || g.GetEmail() != u.GetEmail() || g.GetName() != u.GetName() || !g.GetCreatedAt().AsTime().Equal(u.GetCreatedAt().AsTime()) {
			t.Fatalf("Get = %v, want %v", g, u)
		}
		// Email look-ups ignore case, in the local part too.
		for _, q := range []string{"ada.lovelace@example.com", "ADA.LOVELACE@EXAMPLE.COM", " Ada.Lovelace@example.com"} {
			byEmail, err := e.client.GetByEmail(ctx, connect.NewRequest(&userv1.GetByEmailRequest{Email: q}))
			if err != nil {
				t.Fatalf("GetByEmail(%q): %v", q, err)
			}
			if byEmail.Msg.GetUser().GetId() != u.GetId() {
				t.Fatalf("GetByEmail(%q) = %v", q, byEmail.Msg.GetUser())
			}
		}

		eventually(t, 10*time.Second, "event published", func() bool { return len(eventsFor(t, e, u.GetId())) == 1 })
		ev := eventsFor(t, e, u.GetId())[0]
		if ev.Email != u.GetEmail() || ev.Name != u.GetName() || !ev.RegisteredAt.Equal(u.GetCreatedAt().AsTime()) {
			t.Fatalf("event %+v does not match user %v", ev, u)
		}
		eventually(t, 10*time.Second, "outbox drained", func() bool { _, p := counts(t, url); return p == 0 })
		sec.checkAll(t, e)
	})
}

// TestResponsesHaveNoSecrets reads the raw JSON of every kind of response.
func TestResponsesHaveNoSecrets(t *testing.T) {
	e := start(t, dbtest.URL(t, dbtest.Engines()[0]))
	var sec secrets
	pw := sec.add("s3cret-Pa55word")
	body := post(t, e, "Create", "application/json", fmt.Sprintf(`{"name":"Eve","email":"eve@example.com","password":%q}`, pw), http.StatusOK)
	sec.check(t, "Create response", body)
	id := strings.Split(strings.Split(body, `"id":"`)[1], `"`)[0]
	sec.check(t, "Get response", post(t, e, "Get", "application/json", fmt.Sprintf(`{"id":%q}`, id), http.StatusOK))
	sec.check(t, "GetByEmail response", post(t, e, "GetByEmail", "application/json", `{"email":"EVE@example.com"}`, http.StatusOK))
	sec.check(t, "AlreadyExists response", post(t, e, "Create", "application/json", fmt.Sprintf(`{"name":"Eve","email":"eve@example.com","password":%q}`, pw), http.StatusConflict))
	sec.check(t, "InvalidArgument response", post(t, e, "Create", "application/json", fmt.Sprintf(`{"name":"","email":"eve@example.com","password":%q}`, pw), http.StatusBadRequest))
	eventually(t, 10*time.Second, "event published", func() bool { return len(eventsFor(t, e, id)) == 1 })
	sec.checkAll(t, e)
}

// TestDuplicateEmail: a second registration of an email, in any case or at
// the same moment as the first, is AlreadyExists and publishes nothing.
func TestDuplicateEmail(t *testing.T) {
	dbtest.Run(t, tables, func(t *testing.T, url string) {
		ctx := context.Background()
		e := start(t, url)
		var sec secrets
		first, err := create(ctx, e.client, "", "Ann", "ann@example.com", sec.add("password-one"))
		if err != nil {
			t.Fatal(err)
		}
		for _, email := range []string{"ann@example.com", "ANN@EXAMPLE.COM", " Ann@Example.com "} {
			_, err := create(ctx, e.client, "", "Ann Again", email, sec.add("password-two"))
			if connect.CodeOf(err) != connect.CodeAlreadyExists || !strings.Contains(err.Error(), "email") {
				t.Fatalf("second Create(%q) = %v, want AlreadyExists naming the email", email, err)
			}
		}
		// The same id, another email.
		_, err = create(ctx, e.client, first.GetId(), "Other", "other@example.com", sec.add("password-three"))
		if connect.CodeOf(err) != connect.CodeAlreadyExists || !strings.Contains(err.Error(), "id") {
			t.Fatalf("Create with a taken id = %v, want AlreadyExists naming the id", err)
		}

		// A race: 8 registrations of one new email at once. The unique index
		// decides; the losers get AlreadyExists, not a server error.
		const racers = 8
		var (
			wg           sync.WaitGroup
			mu           sync.Mutex
			won, already int
			other        []error
		)
		for i := range racers {
			wg.Go(func() {
				_, err := create(ctx, e.client, "", "Racer", "race@example.com", sec.add(fmt.Sprintf("racer-password-%d", i)))
				mu.Lock()
				defer mu.Unlock()
				switch connect.CodeOf(err) {
				case connect.CodeUnknown:
					if err == nil {
						won++
						return
					}
					other = append(other, err)
				case connect.CodeAlreadyExists:
					already++
				default:
					other = append(other, err)
				}
			})
		}
		wg.Wait()
		if won != 1 || already != racers-1 || len(other) > 0 {
			t.Fatalf("race: %d won, %d AlreadyExists, other errors %v; want 1, %d, none", won, already, other, racers-1)
		}

		eventually(t, 10*time.Second, "outbox drained", func() bool { _, p := counts(t, url); return p == 0 })
		users, _ := counts(t, url)
		if users != 2 {
			t.Fatalf("%d users stored, want 2", users)
		}
		if n := len(e.broker.messages()); n != 2 {
			t.Fatalf("%d events published, want 2 (one per user)", n)
		}
		if n := len(eventsFor(t, e, first.GetId())); n != 1 {
			t.Fatalf("%d events for the first user, want 1", n)
		}
		sec.checkAll(t, e)
	})
}

// TestSQLStoredLiterally: SQL in a name is data.
func TestSQLStoredLiterally(t *testing.T) {
	dbtest.Run(t, tables, func(t *testing.T, url string) {
		ctx := context.Background()
		e := start(t, url)
		names := []string{
			"Robert'); DROP TABLE users;--",
			`x" OR "1"="1`,
			`' OR 1=1; DELETE FROM herald_outbox; --`,
			`\'; SELECT pg_sleep(10); --`,
		}
		for i, name := range names {
			u, err := create(ctx, e.client, "", name, fmt.Sprintf("sql%d@example.com", i), "password-sql")
			if err != nil {
				t.Fatalf("Create(%q): %v", name, err)
			}
			got, err := e.client.Get(ctx, connect.NewRequest(&userv1.GetRequest{Id: u.GetId()}))
			if err != nil || got.Msg.GetUser().GetName() != name {
				t.Fatalf("Get = %v, %v; want the name %q stored literally", got, err, name)
			}
		}
		eventually(t, 10*time.Second, "events published", func() bool { return len(e.broker.messages()) == len(names) })
		if users, _ := counts(t, url); users != int64(len(names)) {
			t.Fatalf("%d users, want %d", users, len(names))
		}
	})
}

func TestGetErrors(t *testing.T) {
	ctx := context.Background()
	e := start(t, dbtest.URL(t, dbtest.Engines()[0]))
	cases := []struct {
		name  string
		call  func() error
		code  connect.Code
		field string
	}{
		{"unknown id", func() error {
			_, err := e.client.Get(ctx, connect.NewRequest(&userv1.GetRequest{Id: "nobody"}))
			return err
		}, connect.CodeNotFound, "id"},
		{"empty id", func() error {
			_, err := e.client.Get(ctx, connect.NewRequest(&userv1.GetRequest{}))
			return err
		}, connect.CodeInvalidArgument, "id"},
		{"bad id", func() error {
			_, err := e.client.Get(ctx, connect.NewRequest(&userv1.GetRequest{Id: "../etc/passwd"}))
			return err
		}, connect.CodeInvalidArgument, "id"},
		{"unknown email", func() error {
			_, err := e.client.GetByEmail(ctx, connect.NewRequest(&userv1.GetByEmailRequest{Email: "ghost@example.com"}))
			return err
		}, connect.CodeNotFound, "email"},
		{"bad email", func() error {
			_, err := e.client.GetByEmail(ctx, connect.NewRequest(&userv1.GetByEmailRequest{Email: "not an email"}))
			return err
		}, connect.CodeInvalidArgument, "email"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if connect.CodeOf(err) != c.code || !strings.HasPrefix(connectMessage(err), c.field+":") {
				t.Fatalf("err = %v, want %v naming %q", err, c.code, c.field)
			}
		})
	}
}

func connectMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return ""
}

// TestProtocols calls the server with gRPC (HTTP/2 without TLS), gRPC-Web,
// Connect and Connect GET on one port.
func TestProtocols(t *testing.T) {
	ctx := context.Background()
	e := start(t, dbtest.URL(t, dbtest.Engines()[0]))
	u, err := create(ctx, e.client, "", "Proto", "proto@example.com", "password-proto")
	if err != nil {
		t.Fatal(err)
	}
	h2c := &http.Client{Transport: &http.Transport{Protocols: func() *http.Protocols {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		return p
	}()}}
	clients := map[string]userv1connect.UserServiceClient{
		"grpc":        userv1connect.NewUserServiceClient(h2c, e.base, connect.WithGRPC()),
		"grpc-web":    userv1connect.NewUserServiceClient(http.DefaultClient, e.base, connect.WithGRPCWeb()),
		"connect-get": userv1connect.NewUserServiceClient(http.DefaultClient, e.base, connect.WithHTTPGet()),
		"connect-h2c": userv1connect.NewUserServiceClient(h2c, e.base, connect.WithProtoJSON()),
	}
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			res, err := c.Get(ctx, connect.NewRequest(&userv1.GetRequest{Id: u.GetId()}))
			if err != nil || res.Msg.GetUser().GetEmail() != "proto@example.com" {
				t.Fatalf("Get = %v, %v", res, err)
			}
			_, err = c.Get(ctx, connect.NewRequest(&userv1.GetRequest{Id: "missing"}))
			if connect.CodeOf(err) != connect.CodeNotFound {
				t.Fatalf("Get(missing) = %v, want NotFound", err)
			}
		})
	}
	// curl: a GET with the message in the query.
	res, err := http.Get(e.base + "/herald.user.v1.UserService/Get?encoding=json&message=" + `{"id":"` + u.GetId() + `"}`)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(b), "proto@example.com") {
		t.Fatalf("GET: %d %s", res.StatusCode, b)
	}
}

// TestDatabaseDown: when the database stops answering, calls get
// Unavailable and nothing is written.
func TestDatabaseDown(t *testing.T) {
	url := dbtest.URL(t, dbtest.Engines()[0])
	g := dbtest.Open(t, url)
	if err := user.Migrate(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	e := start(t, url, func(c *user.Config) { c.DB = g })
	ctx := context.Background()
	if _, err := create(ctx, e.client, "", "Before", "before@example.com", "password-before"); err != nil {
		t.Fatal(err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.Close() // the database "goes down"

	_, err = create(ctx, e.client, "", "During", "during@example.com", "password-during")
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("Create with the database down = %v, want Unavailable", err)
	}
	_, err = e.client.Get(ctx, connect.NewRequest(&userv1.GetRequest{Id: "x"}))
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("Get with the database down = %v, want Unavailable", err)
	}
	users, _ := counts(t, url)
	if users != 1 {
		t.Fatalf("%d users after the outage, want 1", users)
	}
}

// TestBrokerDown: registrations succeed while the broker is down; their
// events wait in the outbox and are published once it is back.
func TestBrokerDown(t *testing.T) {
	url := dbtest.URL(t, dbtest.Engines()[0])
	e := start(t, url)
	e.broker.down.Store(true)
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		u, err := create(ctx, e.client, "", "Patient", fmt.Sprintf("p%d@example.com", i), "password-patient")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.GetId())
	}
	if _, pending := counts(t, url); pending != 5 {
		t.Fatalf("%d events pending while the broker is down, want 5", pending)
	}
	e.broker.down.Store(false)
	eventually(t, 10*time.Second, "events published after recovery", func() bool { return len(e.broker.messages()) == 5 })
	for _, id := range ids {
		if n := len(eventsFor(t, e, id)); n != 1 {
			t.Fatalf("user %s has %d events, want 1", id, n)
		}
	}
}

// TestRegistry: the server lists itself as herald.user while it runs.
func TestRegistry(t *testing.T) {
	reg, err := regmem.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	e := start(t, dbtest.URL(t, dbtest.Engines()[0]), withRegistry(reg))
	insts, err := reg.Lookup(context.Background(), user.ServiceName)
	if err != nil || len(insts) != 1 || insts[0].Addr != e.srv.Addr() {
		t.Fatalf("Lookup = %v, %v; want one instance at %s", insts, err, e.srv.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if insts, err := reg.Lookup(context.Background(), user.ServiceName); err == nil {
		t.Fatalf("after Shutdown, Lookup = %v; want none", insts)
	}
}

func TestNewServerRejects(t *testing.T) {
	for name, cfg := range map[string]user.Config{
		"no broker":       {},
		"cost too low":    {Broker: &recorder{}, BcryptCost: 3},
		"cost too high":   {Broker: &recorder{}, BcryptCost: 32},
		"tiny body limit": {Broker: &recorder{}, MaxRequestBytes: 10},
		"negative slots":  {Broker: &recorder{}, HashConcurrency: -1},
	} {
		if _, err := user.NewServer(cfg); !errors.Is(err, broker.ErrInvalidOption) {
			t.Errorf("%s: NewServer = %v, want ErrInvalidOption", name, err)
		}
	}
}
