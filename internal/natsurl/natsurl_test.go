package natsurl_test

import (
	"errors"
	"net/url"
	"testing"

	"github.com/herald-dev/herald/internal/natsurl"
)

func TestServers(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://h", "nats://h"},
		{"nats://h:4222/", "nats://h:4222"},
		{"nats://a:1,b:2,c:3?replicas=3", "nats://a:1,nats://b:2,nats://c:3"},
		{"nats://u:p%40ss@a:1,b:2", "nats://u:p%40ss@a:1,nats://u:p%40ss@b:2"},
		{"nats://tok@a:1,b:2", "nats://tok@a:1,nats://tok@b:2"},
		{"tls://a:1,b:2", "tls://a:1,tls://b:2"},
		{"nats://[::1]:4222", "nats://[::1]:4222"},
		{"nats://a,b,c", "nats://a,nats://b,nats://c"},
	} {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatalf("parse %s: %v", tc.in, err)
		}
		got, err := natsurl.Servers(u)
		if err != nil || got != tc.want {
			t.Errorf("Servers(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"nats://", "nats://a:1,,b:2", "nats://,a:1", "nats://a:0", "nats://a:1,b:99999",
		"nats://a:1/path", "nats://a:1,nats://b:2", "nats://:4222", "nats://a:1,:2"} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatalf("parse %s: %v", in, err)
		}
		if got, err := natsurl.Servers(u); !errors.Is(err, natsurl.ErrBadHost) {
			t.Errorf("Servers(%s) = %q, %v; want ErrBadHost", in, got, err)
		}
	}
}
