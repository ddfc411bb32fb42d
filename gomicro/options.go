package gomicro

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	herald "github.com/herald-dev/herald/broker"
	mb "go-micro.dev/v5/broker"
)

// Defaults of [New] and [NewURL].
const (
	// DefaultPublishTimeout bounds a Publish whose context (go-micro's
	// PublishContext) has no deadline.
	DefaultPublishTimeout = 30 * time.Second
	// DefaultDrainTimeout bounds how long Unsubscribe and Disconnect wait
	// for the handlers in flight (go-micro's calls take no context).
	DefaultDrainTimeout = 30 * time.Second
	// DefaultConnectTimeout bounds the opening of the Herald broker by
	// [Broker.Connect] for a broker made by [NewURL].
	DefaultConnectTimeout = 30 * time.Second
	// DefaultStartDelay is how long a new subscription holds its first
	// deliveries (see [WithStartDelay]).
	DefaultStartDelay = 250 * time.Millisecond
)

// Option configures [New] and [NewURL]. Options that get an invalid value
// are ignored, so that a constructor can be used inline in micro.Broker(…);
// each documents its valid range.
type Option func(*config)

type config struct {
	publishTimeout time.Duration
	drainTimeout   time.Duration
	connectTimeout time.Duration
	ackGrace       time.Duration
	startDelay     time.Duration
	subDefaults    []herald.SubscribeOption
	closeOnDisc    bool
	address        string
	logger         *slog.Logger
}

func defaults() config {
	return config{
		publishTimeout: DefaultPublishTimeout,
		drainTimeout:   DefaultDrainTimeout,
		connectTimeout: DefaultConnectTimeout,
		startDelay:     DefaultStartDelay,
		logger:         slog.New(slog.DiscardHandler),
	}
}

// WithPublishTimeout bounds a Publish whose go-micro PublishContext has no
// deadline (d > 0; [DefaultPublishTimeout] by default).
func WithPublishTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.publishTimeout = d
		}
	}
}

// WithDrainTimeout bounds how long Subscriber.Unsubscribe and
// [Broker.Disconnect] wait for handlers in flight (d > 0;
// [DefaultDrainTimeout] by default). Deliveries still running when it ends
// are redelivered.
func WithDrainTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.drainTimeout = d
		}
	}
}

// WithConnectTimeout bounds the opening of the Herald broker by
// [Broker.Connect] for a broker made by [NewURL] (d > 0;
// [DefaultConnectTimeout] by default).
func WithConnectTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.connectTimeout = d
		}
	}
}

// WithAckGrace lets a handler of a subscription with go-micro's
// DisableAutoAck call Event.Ack up to d after it returned (from a goroutine
// of its own, say) before the delivery counts as not acknowledged and goes
// back for redelivery (d ≥ 0; 0, the default, decides when the handler
// returns). The wait counts against the subscription's AckWait.
func WithAckGrace(d time.Duration) Option {
	return func(c *config) {
		if d >= 0 {
			c.ackGrace = d
		}
	}
}

// WithStartDelay makes a new subscription hold its first deliveries until d
// after Subscribe returned (d ≥ 0; [DefaultStartDelay] by default; 0 delivers
// at once).
//
// It closes a window in Go Micro's server, which subscribes to the broker
// first and registers the subscriber with its router only after Subscribe
// returns: a message delivered in between finds no subscriber, and the
// server acknowledges it ("Subscriber not found for topic") — it is lost.
// With a durable Herald backend a restarted service finds a backlog waiting
// and its first messages arrive at once, so the window matters; the delay
// lets the server finish registering first. Programs that call Subscribe
// themselves, not through a Go Micro server, can set 0.
func WithStartDelay(d time.Duration) Option {
	return func(c *config) {
		if d >= 0 {
			c.startDelay = d
		}
	}
}

// WithSubscribeDefaults applies Herald subscribe options to every
// subscription, before the go-micro options and [SubscribeWith]'s: a
// default concurrency, retry policy or dead-letter topic for a whole
// service. herald.Queue here is overridden by go-micro's Queue.
func WithSubscribeDefaults(opts ...herald.SubscribeOption) Option {
	return func(c *config) { c.subDefaults = append(c.subDefaults, opts...) }
}

// CloseOnDisconnect makes [Broker.Disconnect] close the Herald broker given
// to [New], as it always closes one opened by [NewURL]. Connect then fails
// with an error wrapping broker.ErrClosed: a closed broker cannot be
// reopened. Use it when the plugin is the broker's only user.
func CloseOnDisconnect() Option {
	return func(c *config) { c.closeOnDisc = true }
}

// WithAddress sets what [Broker.Address] reports for a broker given to
// [New] (by default its Go type, such as "*nats.Broker").
func WithAddress(addr string) Option {
	return func(c *config) { c.address = addr }
}

// WithLogger sets the logger of the plugin's warnings (a handler that acked
// and then failed, a drain that ran out of time); the default discards
// them. A nil l keeps the default.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// Herald options travel in go-micro's option contexts, the way go-micro's
// own brokers carry theirs.
type (
	subscribeOptionsKey struct{}
	publishOptionsKey   struct{}
)

// ContextWithSubscribeOptions returns a copy of ctx carrying Herald subscribe
// options (herald.MaxAttempts, herald.RetryBackoff, herald.Concurrency,
// herald.DeadLetterTo, herald.AckWait…) for a subscription made with it as
// go-micro's SubscribeContext. A go-micro service passes them with
// server.SubscriberContext:
//
//	micro.RegisterSubscriber("user.registered", srv.Server(), h,
//		server.SubscriberQueue("email"),
//		server.SubscriberContext(gomicro.ContextWithSubscribeOptions(ctx, broker.MaxAttempts(3))))
//
// Options already in ctx are kept, and the new ones applied after them.
func ContextWithSubscribeOptions(ctx context.Context, opts ...herald.SubscribeOption) context.Context {
	prev, _ := ctx.Value(subscribeOptionsKey{}).([]herald.SubscribeOption)
	all := append(append([]herald.SubscribeOption(nil), prev...), opts...)
	return context.WithValue(ctx, subscribeOptionsKey{}, all)
}

// ContextWithPublishOptions returns a copy of ctx carrying Herald publish
// options (herald.Key) for a Publish made with it as go-micro's
// PublishContext. Options already in ctx are kept.
func ContextWithPublishOptions(ctx context.Context, opts ...herald.PublishOption) context.Context {
	prev, _ := ctx.Value(publishOptionsKey{}).([]herald.PublishOption)
	all := append(append([]herald.PublishOption(nil), prev...), opts...)
	return context.WithValue(ctx, publishOptionsKey{}, all)
}

// SubscribeWith is a go-micro SubscribeOption carrying Herald subscribe
// options in the subscription's context (see
// [ContextWithSubscribeOptions]). Give it after any SubscribeContext, which
// replaces the context.
func SubscribeWith(opts ...herald.SubscribeOption) mb.SubscribeOption {
	return func(o *mb.SubscribeOptions) {
		if o.Context == nil {
			o.Context = context.Background()
		}
		o.Context = ContextWithSubscribeOptions(o.Context, opts...)
	}
}

// PublishWith is a go-micro PublishOption carrying Herald publish options in
// the publish context (see [ContextWithPublishOptions]). Give it after any
// PublishContext, which replaces the context.
func PublishWith(opts ...herald.PublishOption) mb.PublishOption {
	return func(o *mb.PublishOptions) {
		if o.Context == nil {
			o.Context = context.Background()
		}
		o.Context = ContextWithPublishOptions(o.Context, opts...)
	}
}

func subscribeOptionsFrom(ctx context.Context) []herald.SubscribeOption {
	opts, _ := ctx.Value(subscribeOptionsKey{}).([]herald.SubscribeOption)
	return opts
}

func publishOptionsFrom(ctx context.Context) []herald.PublishOption {
	opts, _ := ctx.Value(publishOptionsKey{}).([]herald.PublishOption)
	return opts
}

// describe is the default Address of a broker given to New.
func describe(b herald.Broker) string { return fmt.Sprintf("%T", b) }
