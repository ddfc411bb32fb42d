package gomicro

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	herald "github.com/herald-dev/herald/broker"
	mb "go-micro.dev/v5/broker"
)

// Broker is a go-micro broker.Broker over a Herald broker. It is safe for
// concurrent use by multiple goroutines.
type Broker struct {
	cfg config
	mux *herald.URLMux // NewURL only

	life sync.Mutex // serialises Connect and Disconnect

	mu        sync.Mutex
	opts      mb.Options
	rawURL    string        // NewURL only: what Connect opens
	hb        herald.Broker // nil until Connect for NewURL
	owned     bool          // Disconnect closes hb
	closed    bool          // hb was closed and cannot be reused (New only)
	connected bool
	gen       uint64 // counts Connects, so a Subscribe racing a Disconnect notices
	subs      map[*subscriber]struct{}
}

var _ mb.Broker = (*Broker)(nil)

// New returns a go-micro broker that publishes and subscribes through b,
// ready to pass to micro.Broker:
//
//	service := micro.NewService(micro.Name("user"), micro.Broker(gomicro.New(b)))
//
// The caller keeps b: [Broker.Disconnect] stops the plugin's subscriptions
// and leaves b open, unless [CloseOnDisconnect] is given.
//
// Options: [WithPublishTimeout], [WithDrainTimeout], [WithAckGrace],
// [WithStartDelay], [WithSubscribeDefaults], [CloseOnDisconnect], [WithAddress], [WithLogger].
func New(b herald.Broker, opts ...Option) *Broker {
	cfg := defaults()
	for _, opt := range opts {
		opt(&cfg)
	}
	addr := cfg.address
	if addr == "" && b != nil {
		addr = describe(b)
	}
	return &Broker{
		cfg:   cfg,
		opts:  *mb.NewOptions(mb.Addrs(addr)),
		hb:    b,
		owned: cfg.closeOnDisc,
		subs:  map[*subscriber]struct{}{},
	}
}

// NewURL returns a go-micro broker that opens its Herald broker from rawURL
// with mux when it connects ("nats://127.0.0.1:4222", "mem://"…) and closes
// it when it disconnects; it can connect again. Nothing is opened before
// [Broker.Connect], which returns the opening's error (an unknown scheme, a
// bad URL, an unreachable server). go-micro's Addrs option, given to Init
// (or by go-micro's --broker_address flag), replaces rawURL for the next
// Connect.
//
// Options: as for [New], plus [WithConnectTimeout].
func NewURL(mux *herald.URLMux, rawURL string, opts ...Option) *Broker {
	cfg := defaults()
	for _, opt := range opts {
		opt(&cfg)
	}
	return &Broker{
		cfg:    cfg,
		mux:    mux,
		opts:   *mb.NewOptions(mb.Addrs(rawURL)),
		rawURL: rawURL,
		owned:  true,
		subs:   map[*subscriber]struct{}{},
	}
}

// Init applies go-micro broker options. For a broker made by [NewURL], Addrs
// sets the URL the next Connect opens. The other go-micro options (Codec,
// Registry, TLSConfig, Secure) do not apply to Herald, which carries headers
// natively and is configured by its URL or constructor; they are kept in
// [Broker.Options] as given. ErrorHandler is called with the event of each
// failed delivery.
func (b *Broker) Init(opts ...mb.Option) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, o := range opts {
		o(&b.opts)
	}
	if b.mux != nil && len(b.opts.Addrs) > 0 && b.opts.Addrs[0] != "" {
		b.rawURL = b.opts.Addrs[0]
	}
	return nil
}

// Options returns the go-micro options, as set by Init.
func (b *Broker) Options() mb.Options {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opts
}

// Address returns the URL of a broker made by [NewURL] with its password
// hidden, or what [WithAddress] set for one made by [New].
func (b *Broker) Address() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mux != nil {
		return redact(b.rawURL)
	}
	if len(b.opts.Addrs) > 0 {
		return b.opts.Addrs[0]
	}
	return ""
}

// String returns "herald".
func (b *Broker) String() string { return "herald" }

// Connect makes the broker ready to publish and subscribe. For a broker
// made by [NewURL] it opens the Herald broker, bounded by
// [WithConnectTimeout]. Calls while connected return nil.
func (b *Broker) Connect() error {
	b.life.Lock()
	defer b.life.Unlock()
	b.mu.Lock()
	if b.connected {
		b.mu.Unlock()
		return nil
	}
	mux, rawURL, closed := b.mux, b.rawURL, b.closed
	b.mu.Unlock()

	var hb herald.Broker
	switch {
	case mux != nil:
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.connectTimeout)
		defer cancel()
		var err error
		if hb, err = mux.Open(ctx, rawURL); err != nil {
			return fmt.Errorf("gomicro: connect %s: %w", redact(rawURL), err)
		}
	case closed:
		return fmt.Errorf("gomicro: connect: the Herald broker was closed by Disconnect: %w", herald.ErrClosed)
	case b.hb == nil:
		return fmt.Errorf("gomicro: connect: %w: no Herald broker given to New", herald.ErrInvalidOption)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if hb != nil {
		b.hb = hb
	}
	b.connected = true
	b.gen++
	return nil
}

// Disconnect unsubscribes every subscription made through the broker,
// waiting for their handlers in flight (bounded by [WithDrainTimeout]), and
// closes the Herald broker when the plugin owns it ([NewURL], or
// [CloseOnDisconnect]). Publish and Subscribe then return an error wrapping
// [ErrNotConnected] until the next Connect. Calls while disconnected return
// nil.
func (b *Broker) Disconnect() error {
	b.life.Lock()
	defer b.life.Unlock()
	b.mu.Lock()
	if !b.connected {
		b.mu.Unlock()
		return nil
	}
	b.connected = false
	subs := make([]*subscriber, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	clear(b.subs)
	hb, owned := b.hb, b.owned
	if owned {
		if b.mux != nil {
			b.hb = nil
		} else {
			b.closed = true
		}
	}
	b.mu.Unlock()

	var (
		wg   sync.WaitGroup
		emu  sync.Mutex
		errs []error
	)
	for _, s := range subs {
		wg.Go(func() {
			if err := s.stop(); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		})
	}
	wg.Wait()
	if owned {
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.drainTimeout)
		defer cancel()
		if err := hb.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("gomicro: close the Herald broker: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gomicro: disconnect: %w", err)
	}
	return nil
}

// live returns the Herald broker while connected.
func (b *Broker) live() (herald.Broker, uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hb, b.gen, b.connected
}

// Publish publishes m to topic and returns nil only once the Herald broker
// has durably accepted it; any other outcome is returned as an error,
// never swallowed. The headers and body go byte for byte; Publish does not
// keep m.
//
// go-micro's PublishContext bounds the call (else [WithPublishTimeout]) and
// may carry Herald publish options ([ContextWithPublishOptions],
// [PublishWith]). The error wraps [ErrNotConnected] before Connect and
// after Disconnect, and Herald's sentinels otherwise (herald.ErrBadTopic
// for a topic Herald refuses, herald.ErrTooLarge…).
func (b *Broker) Publish(topic string, m *mb.Message, opts ...mb.PublishOption) error {
	var o mb.PublishOptions
	for _, opt := range opts {
		opt(&o)
	}
	ctx := o.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if m == nil {
		return fmt.Errorf("gomicro: publish %q: %w: nil message", topic, herald.ErrInvalidOption)
	}
	hb, _, ok := b.live()
	if !ok {
		return fmt.Errorf("gomicro: publish %q: %w", topic, ErrNotConnected)
	}
	if _, has := ctx.Deadline(); !has {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.publishTimeout)
		defer cancel()
	}
	hm := &herald.Message{Header: herald.Header(m.Header), Body: m.Body}
	if err := hb.Publish(ctx, topic, hm, publishOptionsFrom(ctx)...); err != nil {
		return fmt.Errorf("gomicro: publish %q: %w", topic, err)
	}
	return nil
}

// Subscribe delivers the messages of topic to h until the subscriber
// unsubscribes or the broker disconnects.
//
// With go-micro's Queue(name) the subscriber joins Herald queue group
// [QueueName](name): each message goes to one member of the group, and the
// group keeps messages for its members where the backend persists. Without
// it, the subscriber gets every message published while it lives.
//
// h returning nil acknowledges the message; returning an error has it
// delivered again after Herald's backoff, up to its max attempts, then sent
// to the dead-letter topic (topic + ".dlq" by default); an error wrapped by
// herald.Permanent goes to the dead-letter topic at once; a panic counts as
// an error. With go-micro's DisableAutoAck, a message is acknowledged only
// if h calls Event.Ack (before returning, or within [WithAckGrace]), and
// delivered again otherwise.
//
// The first deliveries wait for [WithStartDelay] (250 ms by default), so
// that a Go Micro server can register the subscriber with its router first.
//
// go-micro's SubscribeContext bounds the set-up and may carry Herald
// subscribe options ([ContextWithSubscribeOptions], [SubscribeWith]),
// applied after [WithSubscribeDefaults]. The error wraps [ErrNotConnected]
// before Connect and after Disconnect.
func (b *Broker) Subscribe(topic string, h mb.Handler, opts ...mb.SubscribeOption) (mb.Subscriber, error) {
	o := mb.NewSubscribeOptions(opts...)
	ctx := o.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if h == nil {
		return nil, fmt.Errorf("gomicro: subscribe %q: %w: nil handler", topic, herald.ErrInvalidOption)
	}
	hb, gen, ok := b.live()
	if !ok {
		return nil, fmt.Errorf("gomicro: subscribe %q: %w", topic, ErrNotConnected)
	}
	hopts := append([]herald.SubscribeOption(nil), b.cfg.subDefaults...)
	hopts = append(hopts, subscribeOptionsFrom(ctx)...)
	if o.Queue != "" {
		hopts = append(hopts, herald.Queue(QueueName(o.Queue)))
	}
	s := &subscriber{b: b, topic: topic, opts: o, h: h, ready: make(chan struct{})}
	hs, err := hb.Subscribe(ctx, topic, s.handle, hopts...)
	if err != nil {
		return nil, fmt.Errorf("gomicro: subscribe %q: %w", topic, err)
	}
	s.sub = hs
	if d := b.cfg.startDelay; d > 0 {
		time.AfterFunc(d, func() { close(s.ready) })
	} else {
		close(s.ready)
	}

	b.mu.Lock()
	current := b.connected && b.gen == gen
	if current {
		b.subs[s] = struct{}{}
	}
	b.mu.Unlock()
	if !current {
		// Disconnect ran while the subscription was being made.
		_ = s.stop()
		return nil, fmt.Errorf("gomicro: subscribe %q: %w", topic, ErrNotConnected)
	}
	return s, nil
}

// forget removes s from the subscriptions Disconnect stops.
func (b *Broker) forget(s *subscriber) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// As exposes the Herald broker (target a *broker.Broker of Herald's broker
// package) while one is open, then what it exposes through its own As.
func (b *Broker) As(target any) bool {
	b.mu.Lock()
	hb := b.hb
	b.mu.Unlock()
	if hb == nil {
		return false
	}
	if t, ok := target.(*herald.Broker); ok {
		*t = hb
		return true
	}
	return herald.As(hb, target)
}

// redact hides the password of a URL for logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if _, has := u.User.Password(); !has {
		return raw
	}
	return u.Redacted()
}
