package nats_test

import (
	"testing"

	"github.com/herald-dev/herald/internal/urlfuzz"
	"github.com/herald-dev/herald/registry"
	regnats "github.com/herald-dev/herald/registry/nats"
)

// FuzzOpenURL feeds OpenURL arbitrary URLs with a context already
// cancelled, so that only the parsing runs (nothing is dialled): it must
// not panic, must not block, and must fail with an error that wraps
// registry.ErrInvalid or, for a URL that parsed, the context's error.
func FuzzOpenURL(f *testing.F) {
	seeds := []string{
		"nats://127.0.0.1:4222",
		"nats://u:p@h:1?bucket=reg",
		"nats://a:1,b:2,c:3?replicas=3",
		"nats://a:1,b:2?replicas=3&bucket=x",
		"nats://",
		"nats://h:1?replicas=0",
		"nats://h:1?replicas=x",
		"nats://h:1?bucket=a.b",
		"nats://a:1,,b:2",
		"nats://a:1,nats://b:2",
		"nats://h:1/x",
		"nats://h:1?nope=1",
		"mem://",
	}
	urlfuzz.OpenURL(f, seeds, regnats.OpenURL, registry.ErrInvalid)
}
