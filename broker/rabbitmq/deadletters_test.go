package rabbitmq_test

import (
	"testing"

	"github.com/herald-dev/herald/broker/brokertest"
	"github.com/herald-dev/herald/broker/rabbitmq"
)

// Dead letters can be browsed (taken and given back) without losing them,
// and deleted by ID.
func TestDeadLetterBrowser(t *testing.T) {
	brokertest.CheckDeadLetterBrowser(ctx(t), t, open(t, rabbitmq.WithExchange(exchange())))
}
