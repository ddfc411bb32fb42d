package redis_test

import (
	"os"
	"testing"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/brokertest"
)

// TestKillConsumer publishes 100,000 messages (HERALD_KILL_MESSAGES) to a
// queue group whose only member runs in a child process, SIGKILLs it after a
// third, starts another, and checks that nothing was lost. It takes a
// while: set HERALD_LONG=1.
func TestKillConsumer(t *testing.T) {
	if os.Getenv("HERALD_LONG") == "" {
		t.Skip("HERALD_LONG is not set: this 100,000-message run with a killed consumer takes a while")
	}
	serverURL(t)
	brokertest.KillConsumer(t, openBroker, "TestKillConsumerChild", envInt("HERALD_KILL_MESSAGES", 100_000))
}

// TestKillConsumerChild is the consumer process of TestKillConsumer.
func TestKillConsumerChild(t *testing.T) { brokertest.KillConsumerChild(t, openBroker) }

func openBroker(t *testing.T) broker.Broker { return open(t) }
