package mem

import "log/slog"

// Option configures a [Broker] made by [New].
type Option func(*config)

type config struct {
	log *slog.Logger
}

// WithLogger sets the logger of the broker's warnings (a Close that ran out
// of time). Subscriptions log through their own [broker.WithLogger]. The
// default discards; a nil l keeps the default.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}
