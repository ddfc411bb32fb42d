package rabbitmq_test

import (
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/brokertest"
	"github.com/herald-dev/herald/broker/rabbitmq"
)

// TestConformance runs the broker conformance suite against a real RabbitMQ
// server with each queue type, restart included (quorum queues) when the
// test can restart the server (see restarter).
func TestConformance(t *testing.T) {
	serverURL(t)
	for _, qt := range []rabbitmq.QueueType{rabbitmq.Quorum, rabbitmq.Classic} {
		t.Run(string(qt), func(t *testing.T) {
			ex := exchange()
			f := brokertest.Features{
				Persistent:          true,
				OrderedPerPublisher: true,
				Timeout:             20 * time.Second,
			}
			restart, why := restarter()
			switch {
			case qt != rabbitmq.Quorum:
				f.Restart = func(t *testing.T) { t.Skip("restart is run once, with quorum queues (the default)") }
			case restart != nil:
				f.Restart = restart
			default:
				f.Restart = func(t *testing.T) { t.Skip(why) }
			}
			brokertest.Run(t, func(t *testing.T) broker.Broker {
				return open(t, rabbitmq.WithExchange(ex), rabbitmq.WithQueueType(qt))
			}, f)
		})
	}
}
