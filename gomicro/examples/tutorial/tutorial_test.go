package tutorial_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	herald "github.com/herald-dev/herald/broker"
	httpbroker "github.com/herald-dev/herald/broker/http"
	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/gomicro"
	"github.com/herald-dev/herald/gomicro/examples/tutorial/email"
	userv1 "github.com/herald-dev/herald/gomicro/examples/tutorial/gen/tutorial/user/v1"
	"github.com/herald-dev/herald/gomicro/examples/tutorial/user"
	regmem "github.com/herald-dev/herald/registry/mem"
	"github.com/herald-dev/herald/services/email/mailbox"
	"github.com/herald-dev/herald/services/email/smtpsink"
	"go-micro.dev/v5"
	merrors "go-micro.dev/v5/errors"
	"go-micro.dev/v5/logger"
	"go-micro.dev/v5/registry"
	"go-micro.dev/v5/selector"
	"go-micro.dev/v5/server"
	"golang.org/x/crypto/bcrypt"
)

func TestMain(m *testing.M) {
	// Go Micro logs every start and stop at info level; keep the test output
	// to what matters.
	logger.DefaultLogger = logger.NewLogger(logger.WithLevel(logger.WarnLevel))
	os.Exit(m.Run())
}

// backend gives each Go Micro service of the tutorial a Herald broker of
// its own on one engine, as separate processes would have.
type backend struct {
	name string
	open func(t *testing.T) func(t *testing.T) herald.Broker
}

func backends() []backend {
	return []backend{
		{name: "nats", open: func(t *testing.T) func(t *testing.T) herald.Broker {
			srv, err := natsserver.Start()
			if err != nil {
				t.Fatalf("embedded NATS server: %v", err)
			}
			t.Cleanup(srv.Shutdown)
			return func(t *testing.T) herald.Broker {
				b, err := nats.New(t.Context(), srv.ClientURL())
				if err != nil {
					t.Fatalf("nats.New: %v", err)
				}
				t.Cleanup(func() { _ = b.Close(context.Background()) })
				return b
			}
		}},
		{name: "http", open: func(t *testing.T) func(t *testing.T) herald.Broker {
			// Herald's peer-to-peer HTTP broker: each service its own spool,
			// endpoint and registry client, one registry store between them.
			store := regmem.NewStore()
			secret := make([]byte, 32)
			_, _ = rand.Read(secret)
			return func(t *testing.T) herald.Broker {
				reg, err := regmem.New(regmem.WithStore(store))
				if err != nil {
					t.Fatal(err)
				}
				b, err := httpbroker.New(reg, httpbroker.WithSpool(t.TempDir()), httpbroker.WithSecret(secret), httpbroker.WithCloseRegistry())
				if err != nil {
					t.Fatalf("httpbroker.New: %v", err)
				}
				t.Cleanup(func() { _ = b.Close(context.Background()) })
				return b
			}
		}},
		{name: "mem", open: func(t *testing.T) func(t *testing.T) herald.Broker {
			bus := mem.New()
			t.Cleanup(func() { _ = bus.Close(context.Background()) })
			return func(t *testing.T) herald.Broker {
				c := bus.Connect()
				t.Cleanup(func() { _ = c.Close(context.Background()) })
				return c
			}
		}},
	}
}

// system is the tutorial running in this process: an SMTP sink, the user
// service, the email service and a client, found through one registry.
type system struct {
	t      *testing.T
	open   func(t *testing.T) herald.Broker
	reg    registry.Registry
	sink   *smtpsink.Sink
	users  userv1.UserService
	emails *email.Subscriber
	emailS micro.Service
}

// newService returns a started Go Micro service on Herald: the one-line
// change is the micro.Broker option.
func (s *system) newService(name string, register func(micro.Service) error) micro.Service {
	t := s.t
	t.Helper()
	svc := micro.NewService(
		micro.Name(name),
		micro.Address("127.0.0.1:0"),
		// A selector of its own: go-micro's default one is a package
		// global, which micro.Registry would re-point for every service.
		micro.Selector(selector.NewSelector(selector.Registry(s.reg))),
		micro.Registry(s.reg),
		micro.HandleSignal(false),
		micro.Broker(gomicro.New(s.open(t))),
	)
	if err := register(svc); err != nil {
		t.Fatalf("%s: register: %v", name, err)
	}
	if err := svc.Start(); err != nil {
		t.Fatalf("%s: start: %v", name, err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return svc
}

func (s *system) startEmail() {
	s.emails = email.New(email.SMTP{Addr: s.sink.Addr(), From: "welcome@herald.local"})
	// Herald options ride in go-micro's subscriber context: quick retries
	// for the test (the default starts at 100 ms).
	ctx := gomicro.ContextWithSubscribeOptions(context.Background(),
		herald.Concurrency(4),
		herald.RetryBackoff(herald.Backoff{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2}))
	s.emailS = s.newService(email.ServiceName, func(svc micro.Service) error {
		return email.Register(svc, s.emails, server.SubscriberContext(ctx))
	})
}

func start(t *testing.T, open func(t *testing.T) herald.Broker, sinkOpts ...smtpsink.Option) *system {
	sink, err := smtpsink.Start("127.0.0.1:0", t.TempDir(), sinkOpts...)
	if err != nil {
		t.Fatalf("SMTP sink: %v", err)
	}
	t.Cleanup(func() { _ = sink.Close(context.Background()) })
	s := &system{t: t, open: open, reg: registry.NewMemoryRegistry(), sink: sink}
	s.startEmail()
	var uh *user.Handler
	s.newService(user.ServiceName, func(svc micro.Service) error {
		uh = user.New(micro.NewEvent(user.Topic, svc.Client()), user.WithBcryptCost(bcrypt.MinCost))
		return user.Register(svc, uh)
	})
	client := micro.NewService(micro.Name("client"), micro.HandleSignal(false),
		micro.Selector(selector.NewSelector(selector.Registry(s.reg))), micro.Registry(s.reg))
	s.users = userv1.NewUserService(user.ServiceName, client.Client())
	s.warmUp()
	return s
}

// warmUp makes one call before the concurrent ones: go-micro's registry
// cache answers "not found" to lookups that race the first one (it records
// the refresh before it stores the result).
func (s *system) warmUp() {
	t := s.t
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := s.users.Get(ctx, &userv1.GetRequest{Id: "nobody"})
		cancel()
		if merrors.FromError(err).Code == 404 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the user service is not reachable: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // retry interval, not synchronisation
	}
}

// register registers users first..first+n-1 through Go Micro RPC, 8 at a
// time, and reads each back.
func (s *system) register(first, n int) {
	t := s.t
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var failed atomic.Int32
	for i := first; i < first+n; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rsp, err := s.users.Create(ctx, &userv1.CreateRequest{
				Name: fmt.Sprintf("User %d", i), Email: address(i), Password: "correct horse battery",
			})
			if err != nil {
				t.Errorf("Create user %d: %v", i, err)
				failed.Add(1)
				return
			}
			got, err := s.users.Get(ctx, &userv1.GetRequest{Id: rsp.GetUser().GetId()})
			if err != nil || got.GetUser().GetEmail() != address(i) {
				t.Errorf("Get user %d: %v %v", i, got, err)
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
}

func address(i int) string { return fmt.Sprintf("user%04d@example.com", i) }

// waitMails waits for want mails in the sink, then checks that users
// 0..want-1 each got exactly one.
func (s *system) waitMails(want int) {
	t := s.t
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for s.sink.Accepted() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
	mails, err := mailbox.List(s.sink.Dir())
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, m := range mails {
		for _, to := range m.To {
			per[to]++
		}
	}
	lost, twice := 0, 0
	for i := range want {
		switch c := per[address(i)]; {
		case c == 0:
			lost++
		case c > 1:
			twice++
		}
	}
	if lost > 0 || twice > 0 || len(mails) != want {
		t.Fatalf("%d mails for %d users: %d users without a mail, %d with more than one", len(mails), want, lost, twice)
	}
	t.Logf("%d users, %d welcome mails, none lost, none twice", want, len(mails))
}

// TestTutorial runs the Go Micro tutorial on Herald: users registered
// through Go Micro RPC, user.registered published by the user service's Go
// Micro client, welcome mails sent by the email service's Go Micro
// subscriber. Every user gets exactly one mail, including users registered
// while the email service was down, and users whose first mail the SMTP
// server refused.
func TestTutorial(t *testing.T) {
	const n = 40
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			open := be.open(t)

			t.Run("RegisterThenMail", func(t *testing.T) {
				s := start(t, open)
				s.register(0, n)
				s.waitMails(n)
			})

			t.Run("EmailServiceDownThenBack", func(t *testing.T) {
				s := start(t, open)
				s.register(0, n/2)
				s.waitMails(n / 2)
				// The email service stops; users keep registering; the
				// queue group keeps their events until it is back.
				if err := s.emailS.Stop(); err != nil {
					t.Fatalf("stop the email service: %v", err)
				}
				s.register(n/2, n/2)
				if got := s.sink.Accepted(); got != n/2 {
					t.Fatalf("%d mails sent while the email service was down", got-n/2)
				}
				s.startEmail()
				s.waitMails(n)
			})

			t.Run("EmailServiceRestartsOnBacklog", func(t *testing.T) {
				// Each restart finds events waiting in the queue group, which
				// Herald delivers at once: the plugin's start delay keeps them
				// from reaching Go Micro's server before it has registered the
				// subscriber with its router (which would acknowledge and drop
				// them as "Subscriber not found").
				s := start(t, open)
				const rounds, per = 12, 3
				for r := range rounds {
					if err := s.emailS.Stop(); err != nil {
						t.Fatalf("round %d: stop the email service: %v", r, err)
					}
					s.register(r*per, per)
					began := time.Now()
					s.startEmail()
					// Longer than the AckWait (30 s): an event that went to
					// the departed member comes back after it at worst.
					deadline := time.Now().Add(45 * time.Second)
					for s.sink.Accepted() < (r+1)*per {
						if time.Now().After(deadline) {
							t.Fatalf("round %d: %d mails for %d users after 45 s", r, s.sink.Accepted(), (r+1)*per)
						}
						time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
					}
					if d := time.Since(began); d > 5*time.Second {
						t.Logf("round %d: the backlog took %v to be mailed", r, d)
					}
				}
				s.waitMails(rounds * per)
			})

			t.Run("SMTPRefusesFirstAttempt", func(t *testing.T) {
				var mu sync.Mutex
				refused := map[string]bool{}
				s := start(t, open, smtpsink.WithRecipientCheck(func(rcpt string) error {
					mu.Lock()
					defer mu.Unlock()
					if !refused[rcpt] {
						refused[rcpt] = true
						return fmt.Errorf("451 try later") // the sink answers 451
					}
					return nil
				}))
				s.register(0, n)
				s.waitMails(n)
				mu.Lock()
				defer mu.Unlock()
				if len(refused) != n {
					t.Errorf("the SMTP sink refused %d first attempts, want %d", len(refused), n)
				}
			})
		})
	}
}
