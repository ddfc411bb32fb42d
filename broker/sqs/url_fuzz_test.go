package sqs_test

import (
	"testing"

	"github.com/herald-dev/herald/broker/sqs"
	"github.com/herald-dev/herald/internal/urlfuzz"
)

// FuzzOpenURL feeds OpenURL arbitrary URLs with a context already cancelled,
// so that only the parsing path runs (nothing is dialled or started): it
// must not panic, must not block, and must fail with an error that wraps
// broker.ErrBadURL, broker.ErrInvalidOption, broker.ErrBadTopic or, for a
// URL that parsed, the context's error.
func FuzzOpenURL(f *testing.F) {
	seeds := []string{
		"sqs://",
		"sqs://eu-west-1",
		"sqs://eu-west-1?wait=1s",
		"sqs://eu-west-1?nope=1",
		"sqs://eu-west-1?wait=x",
		"sqs://eu-west-1?endpoint=http%3A%2F%2F127.0.0.1%3A4566",
		"sqs://eu-west-1?redrive=3&prefix=p",
		"sqs://u:p@eu-west-1:1/x",
	}
	urlfuzz.OpenURL(f, seeds, sqs.OpenURL, urlfuzz.BrokerErrors()...)
}
