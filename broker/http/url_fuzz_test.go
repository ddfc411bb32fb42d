package httpbroker_test

import (
	"context"
	"errors"
	"testing"

	httpbroker "github.com/herald-dev/herald/broker/http"
	"github.com/herald-dev/herald/internal/urlfuzz"
	"github.com/herald-dev/herald/registry"
)

// errNoRegistry stops OpenURLWith once the URL is parsed: the registry
// opener is the first thing it calls after parsing.
var errNoRegistry = errors.New("fuzz: no registry")

// FuzzOpenURL feeds OpenURL arbitrary URLs with a context already cancelled,
// so that only the parsing path runs (nothing is dialled or started): it
// must not panic, must not block, and must fail with an error that wraps
// broker.ErrBadURL, broker.ErrInvalidOption, broker.ErrBadTopic or, for a
// URL that parsed, the context's error.
func FuzzOpenURL(f *testing.F) {
	seeds := []string{
		"http://",
		"https://",
		"http:///path?spool=",
		"http://?registry=mem://&listen=127.0.0.1:0&ttl=5s&spool=",
		"http://?secret=",
		"http://?secret=hunter2hunter2hunter2&registry=",
		"http://host:1?spool=",
		"http://?max_message=x",
		"http://?replay_window=-1s",
		"http://?cert=/nonexistent",
	}
	urlfuzz.OpenURL(f, seeds, httpbroker.OpenURLWith(func(context.Context, string) (registry.Registry, error) { return nil, errNoRegistry }), urlfuzz.BrokerErrors(errNoRegistry)...)
}
