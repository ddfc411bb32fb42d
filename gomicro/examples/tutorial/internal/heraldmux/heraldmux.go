// Package heraldmux builds the Herald URL mux of the tutorial's commands and
// reads the broker URL from the environment.
package heraldmux

import (
	"os"

	herald "github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/nats"
)

// DefaultURL is the broker of the tutorial's commands when HERALD_BROKER_URL
// is not set: a NATS server with JetStream on this machine (`herald serve
// broker`, or `nats-server -js`).
const DefaultURL = "nats://127.0.0.1:4222"

// New returns a mux of the Herald backends the tutorial's commands link:
// the ones that work between processes. (mem:// would give each process a
// bus of its own.)
func New() *herald.URLMux {
	var mux herald.URLMux
	mux.Register(nats.Scheme, nats.OpenURL)
	return &mux
}

// URL returns HERALD_BROKER_URL, or [DefaultURL].
func URL() string {
	if u := os.Getenv("HERALD_BROKER_URL"); u != "" {
		return u
	}
	return DefaultURL
}
