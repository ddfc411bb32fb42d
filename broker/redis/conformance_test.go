package redis_test

import (
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/brokertest"
	"github.com/herald-dev/herald/broker/redis"
)

// TestConformance runs the broker conformance suite against a real Redis
// server, restart included when the test can restart it (see restarter).
func TestConformance(t *testing.T) {
	serverURL(t)
	p := prefix()
	f := brokertest.Features{
		Persistent:          true,
		OrderedPerPublisher: true,
		Timeout:             20 * time.Second,
		// Takeover after AckWait is a redelivery: on a loaded machine a
		// member may not refresh its entries within the default 500ms.
		AckWait: 2 * time.Second,
	}
	restart, why := restarter(t)
	if restart != nil {
		f.Restart = restart
	} else {
		f.Restart = func(t *testing.T) { t.Skip(why) }
	}
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		return open(t, redis.WithPrefix(p))
	}, f)
}
