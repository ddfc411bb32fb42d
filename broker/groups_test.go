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

// TestDeclaredGroupOptions: a declared group gets the options of a default
// member of that group, and the same inputs are refused as by Subscribe.
func TestDeclaredGroupOptions(t *testing.T) {
	o, err := broker.DeclaredGroupOptions("user.registered", "email")
	if err != nil {
		t.Fatal(err)
	}
	want, err := broker.NewSubscribeOptions("user.registered", func(context.Context, *broker.Message) error { return nil }, broker.Queue("email"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Queue != "email" || o.AckWait != want.AckWait || o.MaxAttempts != want.MaxAttempts ||
		o.Concurrency != want.Concurrency || o.Backoff != want.Backoff || o.DeadLetterTopic != want.DeadLetterTopic {
		t.Fatalf("DeclaredGroupOptions = %+v, want a default member's %+v", o, want)
	}
	for _, c := range [][2]string{{"", "email"}, {"user.registered", ""}, {"user registered", "email"}} {
		if _, err := broker.DeclaredGroupOptions(c[0], c[1]); !errors.Is(err, broker.ErrBadTopic) {
			t.Errorf("DeclaredGroupOptions(%q, %q): %v, want ErrBadTopic", c[0], c[1], err)
		}
	}
}
