package system_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"

	"cloud.google.com/go/pubsub/v2/pstest"
	"connectrpc.com/connect"
	"github.com/sivchari/kumo"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/gcppubsub"
	httpbroker "github.com/herald-dev/herald/broker/http"
	"github.com/herald-dev/herald/broker/kafka"
	"github.com/herald-dev/herald/broker/rabbitmq"
	"github.com/herald-dev/herald/broker/redis"
	"github.com/herald-dev/herald/broker/sqs"
	userv1 "github.com/herald-dev/herald/gen/herald/user/v1"
	"github.com/herald-dev/herald/internal/serverlock"
	"github.com/herald-dev/herald/internal/system"
	"github.com/herald-dev/herald/registry"
	regmem "github.com/herald-dev/herald/registry/mem"
)

// TestUpOnEveryBroker runs the whole registration flow — Create, outbox,
// broker, email service, SMTP — as `herald up --broker URL` does, on every
// backend that can run here: Kafka, Pub/Sub and SQS on their official
// in-process fakes, RabbitMQ and Redis on the servers of their test URLs, and
// the HTTP broker in process.
func TestUpOnEveryBroker(t *testing.T) {
	cases := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"kafka", func(t *testing.T) string {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			return "kafka://" + c.ListenAddrs()[0]
		}},
		{"gcppubsub", func(t *testing.T) string {
			srv := pstest.NewServer()
			t.Cleanup(func() { _ = srv.Close() })
			return "gcppubsub://herald-test?endpoint=" + url.QueryEscape(srv.Addr)
		}},
		{"sqs", func(t *testing.T) string {
			srv := kumo.NewServer()
			t.Cleanup(srv.Close)
			return "sqs://us-east-1?wait=1s&endpoint=" + url.QueryEscape(srv.URL)
		}},
		{"rabbitmq", func(t *testing.T) string { return fromEnv(t, "HERALD_TEST_AMQP_URL") }},
		{"redis", func(t *testing.T) string { return fromEnv(t, "HERALD_TEST_REDIS_URL") }},
		{"http", func(*testing.T) string { return "http://" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			brokerURL := c.url(t)
			s, client := start(t, func(cfg *system.Config) {
				cfg.BrokerURL = brokerURL
				cfg.OpenBroker = allBrokers().Open
				cfg.OpenRegistry = openMemRegistry
			})
			const users = 20
			for i := range users {
				if _, err := client.Create(context.Background(), connect.NewRequest(&userv1.CreateRequest{
					Name: fmt.Sprintf("User %d", i), Email: fmt.Sprintf("u%d@%s.example", i, c.name), Password: "correct horse battery",
				})); err != nil {
					t.Fatal(err)
				}
			}
			mails := waitMails(t, s.MailboxDir, users)
			to := map[string]bool{}
			for _, m := range mails {
				to[m.Rcpt[0]] = true
			}
			if len(to) != users {
				t.Fatalf("%d distinct recipients of %d mails, want %d", len(to), len(mails), users)
			}
		})
	}
}

// fromEnv returns the URL of the test server in the environment variable
// name, held against restarts by other packages' tests until t ends, or
// skips t.
func fromEnv(t *testing.T, name string) string {
	u := os.Getenv(name)
	if u == "" {
		t.Skipf("%s is not set: no server to run the system on", name)
	}
	if server, ok := restartedElsewhere[name]; ok {
		serverlock.Use(t, server)
	}
	return u
}

// restartedElsewhere names the servers whose broker packages' tests
// restart them, by the variable holding their URL.
var restartedElsewhere = map[string]string{
	"HERALD_TEST_AMQP_URL":  "rabbitmq",
	"HERALD_TEST_REDIS_URL": "redis",
}

// allBrokers is the URL mux of cmd/herald, with the backends this test runs.
func allBrokers() *broker.URLMux {
	mux := new(broker.URLMux)
	mux.Register(kafka.Scheme, kafka.OpenURL)
	mux.Register(gcppubsub.Scheme, gcppubsub.OpenURL)
	mux.Register(sqs.Scheme, sqs.OpenURL)
	mux.Register(rabbitmq.Scheme, rabbitmq.OpenURL)
	mux.Register(redis.Scheme, redis.OpenURL)
	mux.Register(httpbroker.Scheme, httpbroker.OpenURLWith(openMemRegistry))
	return mux
}

func openMemRegistry(ctx context.Context, raw string) (registry.Registry, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	return regmem.OpenURL(ctx, u)
}
