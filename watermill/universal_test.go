package watermill_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/herald-dev/herald/broker"
	httpbroker "github.com/herald-dev/herald/broker/http"
	"github.com/herald-dev/herald/broker/mem"
	"github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/broker/rabbitmq"
	"github.com/herald-dev/herald/broker/redis"
	memregistry "github.com/herald-dev/herald/registry/mem"
	"github.com/herald-dev/herald/watermill"
)

// universal is Watermill's universal Pub/Sub suite (pubsub/tests), run
// test by test so that a backend can declare, with its reason, a test whose
// premise it does not share. The list is TestPubSub's.
var universal = []struct {
	name string
	fn   func(*testing.T, tests.TestContext, tests.PubSubConstructor)
}{
	{"TestPublishSubscribe", tests.TestPublishSubscribe},
	{"TestConcurrentSubscribe", tests.TestConcurrentSubscribe},
	{"TestConcurrentSubscribeMultipleTopics", tests.TestConcurrentSubscribeMultipleTopics},
	{"TestResendOnError", tests.TestResendOnError},
	{"TestNoAck", tests.TestNoAck},
	{"TestContinueAfterSubscribeClose", tests.TestContinueAfterSubscribeClose},
	{"TestConcurrentClose", tests.TestConcurrentClose},
	{"TestContinueAfterErrors", tests.TestContinueAfterErrors},
	{"TestPublishSubscribeInOrder", tests.TestPublishSubscribeInOrder},
	{"TestPublisherClose", tests.TestPublisherClose},
	{"TestTopic", tests.TestTopic},
	{"TestMessageCtx", tests.TestMessageCtx},
	{"TestSubscribeCtx", tests.TestSubscribeCtx},
	{"TestNewSubscriberReceivesOldMessages", tests.TestNewSubscriberReceivesOldMessages},
	{"TestReconnect", tests.TestReconnect},
}

// features are the Watermill features every Herald backend run here has:
// durable consumer groups, and order for one subscriber at a time.
func features(short bool) tests.Features {
	return tests.Features{
		ConsumerGroups:                      true,
		Persistent:                          true,
		GuaranteedOrder:                     true,
		GuaranteedOrderWithSingleSubscriber: true,
		ForceShort:                          short,
	}
}

// skipped says why a test does not apply to any Herald backend.
var skipped = map[string]string{
	"TestReconnect":                        "needs RestartServiceCommand (a docker restart); Herald's own conformance suite restarts each backend's server mid-stream (brokertest Restart)",
	"TestNewSubscriberReceivesOldMessages": "Features.NewSubscriberReceivesOldMessages is false: a new queue group starts with what is published after it exists",
}

// runUniversal runs the suite against the backend whose clients open
// returns; every call of open must give a new client of one engine.
// dedupesIDs says that the backend drops a message published again with an
// ID it accepted recently, which TestMessageCtx does.
func runUniversal(t *testing.T, open func(t *testing.T) broker.Broker, f tests.Features, dedupesIDs bool) {
	pubSub := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		pub, err := watermill.NewPublisher(open(t), watermill.PublisherConfig{})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := watermill.NewSubscriber(open(t), watermill.SubscriberConfig{Group: group})
		if err != nil {
			t.Fatal(err)
		}
		return pub, sub
	}
	for _, u := range universal {
		t.Run(u.name, func(t *testing.T) {
			if why, ok := skipped[u.name]; ok {
				t.Skip(why)
			}
			if u.name == "TestMessageCtx" && dedupesIDs {
				t.Skip("publishes one message twice with one UUID; this backend delivers it once (IDs identify events, broker.Broker's contract)")
			}
			t.Parallel()
			u.fn(t, tests.TestContext{TestID: tests.NewTestID(), Features: f},
				func(t *testing.T) (message.Publisher, message.Subscriber) { return pubSub(t, "") })
		})
	}
	t.Run("TestConsumerGroups", func(t *testing.T) {
		t.Parallel()
		tests.TestConsumerGroups(t, tests.TestContext{TestID: tests.NewTestID(), Features: f}, pubSub)
	})
}

// closeLater closes b when the test ends.
func closeLater(t *testing.T, b broker.Broker) broker.Broker {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close %T: %v", b, err)
		}
	})
	return b
}

func TestUniversalMem(t *testing.T) {
	bus := mem.New()
	runUniversal(t, func(t *testing.T) broker.Broker { return closeLater(t, bus.Connect()) }, features(false), false)
}

func TestUniversalNATS(t *testing.T) {
	srv, err := natsserver.Start(natsserver.WithDataDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	runUniversal(t, func(t *testing.T) broker.Broker {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b, err := nats.New(ctx, srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		return closeLater(t, b)
	}, features(false), true)
}

func TestUniversalRabbitMQ(t *testing.T) {
	raw := os.Getenv("HERALD_TEST_AMQP_URL")
	if raw == "" {
		t.Skip("HERALD_TEST_AMQP_URL is not set: no RabbitMQ to test against")
	}
	runUniversal(t, func(t *testing.T) broker.Broker {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The suite makes a hundred groups on random topics: the server
		// deletes their queues once unused, instead of keeping them (and
		// recovering them, slowly, at its next restart) for good.
		b, err := rabbitmq.New(ctx, raw, rabbitmq.WithQueueExpiry(2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return closeLater(t, b)
	}, features(true), false)
}

func TestUniversalRedis(t *testing.T) {
	raw := os.Getenv("HERALD_TEST_REDIS_URL")
	if raw == "" {
		t.Skip("HERALD_TEST_REDIS_URL is not set: no Redis to test against")
	}
	runUniversal(t, func(t *testing.T) broker.Broker {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b, err := redis.New(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		return closeLater(t, b)
	}, features(true), false)
}

// TestUniversalHTTP runs the suite on the HTTP broker, each client with its
// own spool and endpoint and a registry client of one shared store, as
// separate processes would be.
func TestUniversalHTTP(t *testing.T) {
	store := memregistry.NewStore()
	secret := []byte("watermill universal suite secret!")
	runUniversal(t, func(t *testing.T) broker.Broker {
		reg, err := memregistry.New(memregistry.WithStore(store))
		if err != nil {
			t.Fatal(err)
		}
		b, err := httpbroker.New(reg, httpbroker.WithSpool(t.TempDir()), httpbroker.WithSecret(secret), httpbroker.WithCloseRegistry())
		if err != nil {
			t.Fatal(err)
		}
		return closeLater(t, b)
	}, features(true), false)
}
