package broker_test

import (
	"context"
	"errors"
	"testing"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
)

// plain is a Broker without the GroupDeclarer capability.
type plain struct{ broker.Broker }

func TestDeclareGroupUnsupported(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	defer b.Close(ctx)
	if err := broker.DeclareGroup(ctx, plain{b}, "user.registered", "email"); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("DeclareGroup on a broker without the capability: %v, want errors.ErrUnsupported", err)
	}
	if err := broker.DeclareGroup(ctx, b, "user.registered", "email"); err != nil {
		t.Fatalf("DeclareGroup on mem: %v", err)
	}
}

func TestValidateGroup(t *testing.T) {
	for _, c := range []struct {
		topic, group string
		ok           bool
	}{
		{"user.registered", "email", true},
		{"user.registered", "", false},
		{"user.registered", "a.b", false},
		{"user..registered", "email", false},
		{"", "email", false},
	} {
		err := broker.ValidateGroup(c.topic, c.group)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, broker.ErrBadTopic)) {
			t.Errorf("ValidateGroup(%q, %q) = %v, want ok=%v (else ErrBadTopic)", c.topic, c.group, err, c.ok)
		}
	}
}
