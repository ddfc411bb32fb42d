package redis_test

import (
	"testing"

	"github.com/herald-dev/herald/broker/brokertest"
)

// Dead letters can be browsed without consuming them, and deleted by ID.
func TestDeadLetterBrowser(t *testing.T) {
	brokertest.CheckDeadLetterBrowser(ctx(t), t, open(t, withPrefix()))
}
