package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herald-dev/herald/broker"
	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

var (
	_ broker.Broker         = (*Broker)(nil)
	_ broker.BatchPublisher = (*Broker)(nil)
)

// Broker is a [broker.Broker] on Redis Streams. It is safe for concurrent use
// by multiple goroutines.
type Broker struct {
	cfg    config
	client *goredis.Client
	own    bool // client made by New: Close closes it
	// blocking holds the subscriptions' own connections, each blocked in
	// XREADGROUP most of the time, so they never starve client's pool.
	blocking *goredis.Client
	scripts  scripts

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
}

// New connects to the Redis server at url ("redis://[user:password@]host:port/db",
// or "rediss://" for TLS; see [goredis.ParseURL]) and returns a broker on it.
// ctx bounds the first PING.
//
// The server should persist what it acknowledges: with appendonly yes and
// appendfsync always, a message is on disk before Publish returns (see the
// package documentation). New logs a warning when the server says otherwise.
//
// Options: [WithClient], [WithPrefix], [WithMaxLen], [WithPrefetch],
// [WithPublishTimeout], [WithBlock], [WithMaxMessageSize], [WithLogger].
func New(ctx context.Context, url string, opts ...Option) (*Broker, error) {
	cfg := defaults()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	b := &Broker{cfg: cfg, client: cfg.client, scripts: newScripts(), subs: map[*subscription]struct{}{}}
	var o *goredis.Options
	if b.client == nil {
		var err error
		if o, err = goredis.ParseURL(url); err != nil {
			return nil, fmt.Errorf("redis: %w: %v", broker.ErrBadURL, redactErr(err, url))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redis: connect: %w", err)
	}
	if b.client == nil {
		b.client, b.own = goredis.NewClient(o), true
	}
	bo := *b.client.Options()
	bo.PoolSize = 1 << 16 // one connection per subscription, dialled when needed
	bo.MinIdleConns, bo.MaxIdleConns = 0, 0
	// The options came from a live client: its maintenance-notification
	// state must not be shared (nor is it needed for blocking reads).
	bo.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	b.blocking = goredis.NewClient(&bo)
	if err := b.client.Ping(ctx).Err(); err != nil {
		b.closeClients()
		return nil, fmt.Errorf("redis: connect: %w", err)
	}
	b.checkPersistence(ctx)
	return b, nil
}

// checkPersistence warns when the server may lose what it acknowledged.
func (b *Broker) checkPersistence(ctx context.Context) {
	cfg, err := b.client.ConfigGet(ctx, "append*").Result()
	if err != nil {
		b.cfg.logger.Debug("redis: cannot read the server's persistence settings", "err", err)
		return
	}
	if cfg["appendonly"] != "yes" || cfg["appendfsync"] != "always" {
		b.cfg.logger.Warn("redis: the server may lose acknowledged messages on a crash; Herald needs appendonly yes and appendfsync always",
			"appendonly", cfg["appendonly"], "appendfsync", cfg["appendfsync"])
	}
}

// redactErr removes url, which may hold a password, from err's text.
func redactErr(err error, url string) string {
	s := err.Error()
	if url != "" {
		s = strings.ReplaceAll(s, url, "<url>")
	}
	return s
}

func (b *Broker) closeClients() {
	_ = b.blocking.Close()
	if b.own {
		_ = b.client.Close()
	}
}

// Publish appends m to the stream of topic (XADD) and returns nil once the
// server has acknowledged it. How durable that is depends on the server's
// persistence (see the package documentation). It retries while the server
// is unreachable or loading, until ctx is done (or [WithPublishTimeout] when
// ctx has no deadline); a retry after a lost reply may store the message
// twice, with the same ID. The error wraps [broker.ErrTooLarge] for a
// message over [WithMaxMessageSize] and [broker.ErrClosed] after Close.
func (b *Broker) Publish(ctx context.Context, topic string, m *broker.Message, opts ...broker.PublishOption) error {
	if _, err := broker.NewPublishOptions(topic, m, opts...); err != nil {
		return fmt.Errorf("redis: publish %q: %w", topic, err)
	}
	if b.isClosed() {
		return fmt.Errorf("redis: publish %q: %w", topic, broker.ErrClosed)
	}
	if m.ID == "" {
		m.ID = broker.NewID()
	}
	if err := b.publish(ctx, topic, m); err != nil {
		return fmt.Errorf("redis: publish %q: %w", topic, err)
	}
	return nil
}

// publish is Publish without the checks, for dead letters too (which must
// go out while Close drains handlers).
func (b *Broker) publish(ctx context.Context, topic string, m *broker.Message) error {
	if n := entrySize(m); n > b.cfg.maxSize {
		return fmt.Errorf("%w: %d bytes, the limit is %d", broker.ErrTooLarge, n, b.cfg.maxSize)
	}
	args := b.xaddArgs(topic, m)
	ctx, cancel := b.publishContext(ctx)
	defer cancel()
	return retry(ctx, func() error { return b.client.XAdd(ctx, args).Err() })
}

func (b *Broker) xaddArgs(topic string, m *broker.Message) *goredis.XAddArgs {
	a := &goredis.XAddArgs{Stream: streamKey(b.cfg.prefix, topic), Values: entryValues(m)}
	if b.cfg.maxLen > 0 {
		a.MaxLen, a.Approx = b.cfg.maxLen, true
	}
	return a
}

// PublishBatch appends ms to the stream of topic in order, in pipelines of
// up to 1,000 XADDs, and returns nil once the server has acknowledged every
// one. Entries of a pipeline that failed for a passing reason are sent again.
// It implements [broker.BatchPublisher].
func (b *Broker) PublishBatch(ctx context.Context, topic string, ms []*broker.Message, opts ...broker.PublishOption) error {
	for _, m := range ms {
		if _, err := broker.NewPublishOptions(topic, m, opts...); err != nil {
			return fmt.Errorf("redis: publish %q: %w", topic, err)
		}
	}
	if b.isClosed() {
		return fmt.Errorf("redis: publish %q: %w", topic, broker.ErrClosed)
	}
	args := make([]*goredis.XAddArgs, len(ms))
	for i, m := range ms {
		if m.ID == "" {
			m.ID = broker.NewID()
		}
		if n := entrySize(m); n > b.cfg.maxSize {
			return fmt.Errorf("redis: publish %q: message %d: %w: %d bytes, the limit is %d", topic, i, broker.ErrTooLarge, n, b.cfg.maxSize)
		}
		args[i] = b.xaddArgs(topic, m)
	}
	ctx, cancel := b.publishContext(ctx)
	defer cancel()
	const chunk = 1000
	for start := 0; start < len(args); start += chunk {
		part := args[start:min(start+chunk, len(args))]
		pending := part
		err := retry(ctx, func() error {
			cmds := make([]*goredis.StringCmd, len(pending))
			_, err := b.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for i, a := range pending {
					cmds[i] = p.XAdd(ctx, a)
				}
				return nil
			})
			if err == nil {
				return nil
			}
			var failed []*goredis.XAddArgs
			var first error
			for i, c := range cmds {
				if c.Err() != nil {
					failed = append(failed, pending[i])
					if first == nil || (transient(first) && !transient(c.Err())) {
						first = c.Err()
					}
				}
			}
			pending = failed
			if first == nil {
				first = err
			}
			return first
		})
		if err != nil {
			return fmt.Errorf("redis: publish %q: %d of %d messages not acknowledged: %w", topic, len(ms)-start-len(part)+len(pending), len(ms), err)
		}
	}
	return nil
}

// publishContext bounds ctx by [WithPublishTimeout] when it has no deadline.
func (b *Broker) publishContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, b.cfg.publishTimeout)
}

// retry runs op until it succeeds, fails for a reason that does not pass,
// or ctx is done, waiting a growing, jittered delay between attempts.
func retry(ctx context.Context, op func() error) error {
	backoff := broker.Backoff{Initial: 20 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.2}
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		if !transient(err) {
			return classify(err)
		}
		if !sleep(ctx, backoff.Delay(n)) {
			return errors.Join(ctx.Err(), err)
		}
	}
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// transient reports whether err may pass by itself: the server is
// unreachable, restarting, loading its data, or busy.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, goredis.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, goredis.ErrPoolTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	for _, p := range []string{"LOADING ", "BUSY ", "TRYAGAIN ", "MASTERDOWN ", "CLUSTERDOWN ", "READONLY ", "NOREPLICAS "} {
		if goredis.HasErrorPrefix(err, p) {
			return true
		}
	}
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe") || strings.Contains(s, "bad state")
}

// classify wraps the broker's sentinel errors around Redis errors that mean
// the same.
func classify(err error) error {
	switch {
	case errors.Is(err, goredis.ErrClosed):
		return fmt.Errorf("%w: %w", broker.ErrClosed, err)
	case goredis.HasErrorPrefix(err, "ERR") && strings.Contains(err.Error(), "too large"),
		goredis.HasErrorPrefix(err, "OOM"):
		return fmt.Errorf("%w: %w", broker.ErrTooLarge, err)
	}
	return err
}

// Close stops every subscription (stop reading, let in-flight handlers
// finish, bounded by ctx; see [broker.Subscription]) and closes the
// connections, the client too unless it came from [WithClient]. Calls after
// the first return nil.
func (b *Broker) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()

	errs := []error{broker.UnsubscribeAll(ctx, subs)}
	b.closeClients()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("redis: close: %w", err)
	}
	return nil
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// As exposes the broker's Redis client: target may be a **goredis.Client
// (github.com/redis/go-redis/v9).
func (b *Broker) As(target any) bool {
	if t, ok := target.(**goredis.Client); ok {
		*t = b.client
		return true
	}
	return false
}
