package mem_test

import (
	"context"
	"errors"
	"regexp"
	"testing"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/mem"
)

// validTopic is broker.ValidateTopic's documented rule, written another way.
var validTopic = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// FuzzValidateTopic checks broker.ValidateTopic and broker.ValidateQueue
// against their documented rules, and that Publish and Subscribe (of the
// in-process backend, which lives here because package broker has no fuzz
// target of its own) accept exactly the names they accept.
func FuzzValidateTopic(f *testing.F) {
	for _, s := range []string{"user.registered", "user.registered.dlq", "a", "", ".", "a..b", "a.", ".a", "a b", "ä", "a*", "a>", "x\x00y",
		"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"} {
		f.Add(s)
	}
	b := mem.New()
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, topic string) {
		err := broker.ValidateTopic(topic)
		want := len(topic) <= broker.MaxTopicLength && validTopic.MatchString(topic)
		if (err == nil) != want {
			t.Fatalf("ValidateTopic(%q) = %v, want valid=%v", topic, err, want)
		}
		if err != nil && !errors.Is(err, broker.ErrBadTopic) {
			t.Fatalf("ValidateTopic(%q) = %v, does not wrap ErrBadTopic", topic, err)
		}
		qerr := broker.ValidateQueue(topic)
		qwant := len(topic) <= broker.MaxQueueLength && want && !containsDot(topic)
		if (qerr == nil) != qwant || (qerr != nil && !errors.Is(qerr, broker.ErrBadTopic)) {
			t.Fatalf("ValidateQueue(%q) = %v, want valid=%v", topic, qerr, qwant)
		}
		perr := b.Publish(ctx, topic, &broker.Message{Body: []byte("x")})
		if (perr == nil) != want || (perr != nil && !errors.Is(perr, broker.ErrBadTopic)) {
			t.Fatalf("Publish(%q) = %v, want valid=%v", topic, perr, want)
		}
		if !want {
			_, serr := b.Subscribe(ctx, topic, func(context.Context, *broker.Message) error { return nil })
			if !errors.Is(serr, broker.ErrBadTopic) {
				t.Fatalf("Subscribe(%q) = %v, want ErrBadTopic", topic, serr)
			}
		}
	})
}

func containsDot(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return true
		}
	}
	return false
}
