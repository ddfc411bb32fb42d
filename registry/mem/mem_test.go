package mem_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/herald-dev/herald/registry"
	"github.com/herald-dev/herald/registry/mem"
	"github.com/herald-dev/herald/registry/registrytest"
)

func TestConformance(t *testing.T) {
	store := mem.NewStore()
	registrytest.Run(t, func(t *testing.T) registry.Registry {
		r, err := mem.New(mem.WithStore(store))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}, registrytest.Features{
		Crash:       func(_ *testing.T, r registry.Registry) { r.(*mem.Registry).Kill() },
		ExpirySlack: time.Second,
	})
}

func TestOpenURL(t *testing.T) {
	for _, raw := range []string{"mem://", "mem:///"} {
		u, _ := url.Parse(raw)
		r, err := mem.OpenURL(context.Background(), u)
		if err != nil {
			t.Fatalf("OpenURL(%q): %v", raw, err)
		}
		_ = r.Close(context.Background())
	}
	for _, raw := range []string{"mem://host", "mem://?x=1", "mem:///path", "nats://"} {
		u, _ := url.Parse(raw)
		if _, err := mem.OpenURL(context.Background(), u); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("OpenURL(%q): %v, want ErrInvalid", raw, err)
		}
	}
}

func TestSeparateStoresAreSeparate(t *testing.T) {
	ctx := context.Background()
	r1, _ := mem.New()
	r2, _ := mem.New()
	defer r1.Close(ctx)
	defer r2.Close(ctx)
	if err := r1.Register(ctx, registry.Instance{Service: "s", ID: "a", Addr: "h:1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Lookup(ctx, "s"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("a client of another store sees the instance: %v", err)
	}
	if r1.Store() == r2.Store() {
		t.Fatal("two New calls share a store")
	}
}
