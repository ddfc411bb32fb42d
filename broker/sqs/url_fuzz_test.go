package sqs_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/sqs"
)

// FuzzOpenURL feeds OpenURL arbitrary URLs with a context already cancelled,
// so that only the parsing path runs (nothing is dialled or started): it
// must not panic, must not block, and must fail with an error that wraps
// broker.ErrBadURL, broker.ErrInvalidOption, broker.ErrBadTopic or, for a
// URL that parsed, the context's error.
func FuzzOpenURL(f *testing.F) {
	for _, s := range []string{"sqs://", "sqs://eu-west-1", "sqs://eu-west-1?wait=1s", "sqs://eu-west-1?nope=1", "sqs://eu-west-1?wait=x", "sqs://eu-west-1?endpoint=http%3A%2F%2F127.0.0.1%3A4566", "sqs://eu-west-1?redrive=3&prefix=p", "sqs://u:p@eu-west-1:1/x"} {
		f.Add(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		start := time.Now()
		b, err := sqs.OpenURL(ctx, u)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("OpenURL(%q) with a cancelled context took %v", raw, d)
		}
		if err == nil {
			_ = b.Close(ctx)
			t.Fatalf("OpenURL(%q) with a cancelled context succeeded", raw)
		}
		if !errors.Is(err, broker.ErrBadURL) && !errors.Is(err, broker.ErrInvalidOption) && !errors.Is(err, broker.ErrBadTopic) &&
			!errors.Is(err, context.Canceled) {
			t.Fatalf("OpenURL(%q): %v: wraps no documented sentinel", raw, err)
		}
	})
}
