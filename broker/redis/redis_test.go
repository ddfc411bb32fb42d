package redis_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/redis"
	goredis "github.com/redis/go-redis/v9"
)

// collector records deliveries for a test goroutine to wait on.
type collector struct {
	mu sync.Mutex
	ms []*broker.Message
	at []time.Time
	ch chan struct{} // signalled on each delivery
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1<<16)} }

func (c *collector) handler(fn broker.Handler) broker.Handler {
	return func(ctx context.Context, m *broker.Message) error {
		c.mu.Lock()
		c.ms = append(c.ms, m.Clone())
		c.at = append(c.at, time.Now())
		c.mu.Unlock()
		c.ch <- struct{}{}
		if fn != nil {
			return fn(ctx, m)
		}
		return nil
	}
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ms)
}

// wait waits for n deliveries in all, failing the test after timeout.
func (c *collector) wait(t *testing.T, n int, timeout time.Duration) []*broker.Message {
	t.Helper()
	deadline := time.After(timeout)
	for c.len() < n {
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("got %d deliveries, want %d, after %v", c.len(), n, timeout)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*broker.Message(nil), c.ms...)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func subscribe(t *testing.T, b broker.Broker, topic string, h broker.Handler, opts ...broker.SubscribeOption) broker.Subscription {
	t.Helper()
	sub, err := b.Subscribe(ctx(t), topic, h, opts...)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe(context.Background()) })
	return sub
}

func publish(t *testing.T, b broker.Broker, topic string, m *broker.Message) {
	t.Helper()
	if err := b.Publish(ctx(t), topic, m); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func client(t *testing.T, b *redis.Broker) *goredis.Client {
	t.Helper()
	var c *goredis.Client
	if !broker.As(b, &c) || c == nil {
		t.Fatal("As(**goredis.Client) = false")
	}
	return c
}

func TestOpenURL(t *testing.T) {
	raw := serverURL(t)
	bad := []struct{ name, url string }{
		{"unknown parameter", raw + "?maxlength=10"},
		{"parameter twice", raw + "?maxlen=1&maxlen=2"},
		{"bad maxlen", raw + "?maxlen=many"},
		{"negative maxlen", raw + "?maxlen=-1"},
		{"bad block", raw + "?block=soon"},
		{"bad prefix", raw + "?prefix=a.b"},
		{"wrong scheme", strings.Replace(raw, "redis", "amqp", 1)},
	}
	for _, tc := range bad {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		b, err := redis.OpenURL(ctx(t), u)
		if err == nil {
			_ = b.Close(ctx(t))
			t.Errorf("%s: OpenURL(%q) succeeded", tc.name, tc.url)
			continue
		}
		if !errors.Is(err, broker.ErrBadURL) && !errors.Is(err, broker.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrBadURL or ErrInvalidOption", tc.name, err)
		}
	}

	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	p := prefix()
	u, _ := url.Parse(raw + sep + "maxlen=50&prefix=" + p + "&prefetch=8&publish_timeout=5s&block=1s&dial_timeout=2s")
	b, err := redis.OpenURL(ctx(t), u)
	if err != nil {
		t.Fatalf("OpenURL: %v", err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	rb := b.(*redis.Broker)
	c := newCollector()
	subscribe(t, b, "open.url", c.handler(nil), broker.Queue("g"))
	for range 200 {
		publish(t, b, "open.url", &broker.Message{Body: []byte("x")})
	}
	c.wait(t, 200, 10*time.Second)
	n, err := client(t, rb).XLen(ctx(t), p+":{open.url}").Result()
	if err != nil || n > 150 {
		t.Errorf("XLEN with maxlen=50 after 200 messages: %d, %v; want about 50 (trimmed)", n, err)
	}
}

// A queue group created after messages were published still gets them (its
// consumer group starts at the stream's beginning); a broadcast subscriber
// does not.
func TestNewGroupGetsEarlierMessages(t *testing.T) {
	b := open(t, withPrefix())
	for i := range 5 {
		publish(t, b, "early.msgs", &broker.Message{Body: []byte{byte(i)}})
	}
	all := newCollector()
	subscribe(t, b, "early.msgs", all.handler(nil))
	group := newCollector()
	subscribe(t, b, "early.msgs", group.handler(nil), broker.Queue("late"))
	group.wait(t, 5, 10*time.Second)
	m := &broker.Message{Body: []byte("after")}
	publish(t, b, "early.msgs", m)
	got := all.wait(t, 1, 10*time.Second)
	if len(got) != 1 || got[0].ID != m.ID {
		t.Errorf("broadcast subscriber got %d messages (first %q), want only the one published after it subscribed (%q)", len(got), got[0].ID, m.ID)
	}
}

// Entries read by a consumer that then crashed (never acknowledged) are
// taken over after AckWait, with their delivery counted in Attempt.
func TestTakeOverCrashedConsumer(t *testing.T) {
	p := prefix()
	b := open(t, redis.WithPrefix(p))
	c := client(t, b)
	stream := p + ":{crash.test}"
	if err := c.XGroupCreateMkStream(ctx(t), stream, "workers", "0").Err(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		m := &broker.Message{Body: []byte{byte(i)}}
		publish(t, b, "crash.test", m)
		ids = append(ids, m.ID)
	}
	// The "crashed" consumer reads them and never acknowledges.
	res, err := c.XReadGroup(ctx(t), &goredis.XReadGroupArgs{Group: "workers", Consumer: "crashed", Streams: []string{stream, ">"}, Count: 10, Block: -1}).Result()
	if err != nil || len(res) != 1 || len(res[0].Messages) != 3 {
		t.Fatalf("XREADGROUP as the crashed consumer: %v, %v", res, err)
	}
	got := newCollector()
	start := time.Now()
	subscribe(t, b, "crash.test", got.handler(nil), broker.Queue("workers"), broker.AckWait(300*time.Millisecond))
	ms := got.wait(t, 3, 10*time.Second)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("taken over after %v, before AckWait", d)
	}
	for i, m := range ms {
		if m.ID != ids[i] || m.Attempt != 2 || m.Body[0] != byte(i) {
			t.Errorf("delivery %d: ID %q Attempt %d body %v; want ID %q Attempt 2 body [%d]", i, m.ID, m.Attempt, m.Body, ids[i], i)
		}
	}
	pending, err := c.XPending(ctx(t), stream, "workers").Result()
	deadline := time.Now().Add(5 * time.Second)
	for err == nil && pending.Count > 0 && time.Now().Before(deadline) {
		<-time.After(10 * time.Millisecond)
		pending, err = c.XPending(ctx(t), stream, "workers").Result()
	}
	if err != nil || pending.Count != 0 {
		t.Errorf("pending after the takeover: %+v, %v; want none", pending, err)
	}
}

// A nacked message waits for its backoff without holding up the messages
// behind it.
func TestRedeliveryDoesNotBlock(t *testing.T) {
	b := open(t, withPrefix())
	const backoff = 400 * time.Millisecond
	c := newCollector()
	var once sync.Once
	subscribe(t, b, "noblock", c.handler(func(_ context.Context, m *broker.Message) error {
		var err error
		once.Do(func() { err = errors.New("first one fails") })
		return err
	}), broker.Queue("g"), broker.Concurrency(1), broker.RetryBackoff(broker.Backoff{Initial: backoff, Max: backoff}))
	a := &broker.Message{Body: []byte("a")}
	publish(t, b, "noblock", a)
	c.wait(t, 1, 10*time.Second)
	bm := &broker.Message{Body: []byte("b")}
	publish(t, b, "noblock", bm)
	ms := c.wait(t, 3, 10*time.Second)
	if ms[0].ID != a.ID || ms[1].ID != bm.ID || ms[2].ID != a.ID || ms[2].Attempt != 2 {
		t.Errorf("deliveries %s/%d, %s/%d, %s/%d; want a/1, b/1, a/2", ms[0].Body, ms[0].Attempt, ms[1].Body, ms[1].Attempt, ms[2].Body, ms[2].Attempt)
	}
	c.mu.Lock()
	gap := c.at[2].Sub(c.at[0])
	c.mu.Unlock()
	if gap < backoff-backoff/10 {
		t.Errorf("redelivered %v after the first attempt, before the %v backoff", gap, backoff)
	}
}

// A broadcast subscriber's consumer group and retry keys go with Unsubscribe.
func TestBroadcastGroupRemoved(t *testing.T) {
	p := prefix()
	b := open(t, redis.WithPrefix(p))
	c := client(t, b)
	sub := subscribe(t, b, "bcast.gone", func(context.Context, *broker.Message) error { return nil })
	groups, err := c.XInfoGroups(ctx(t), p+":{bcast.gone}").Result()
	if err != nil || len(groups) != 1 || !strings.HasPrefix(groups[0].Name, "~") {
		t.Fatalf("groups while subscribed: %+v, %v; want one broadcast group", groups, err)
	}
	if err := sub.Unsubscribe(ctx(t)); err != nil {
		t.Fatal(err)
	}
	groups, err = c.XInfoGroups(ctx(t), p+":{bcast.gone}").Result()
	if err != nil || len(groups) != 0 {
		t.Errorf("groups after Unsubscribe: %+v, %v; want none", groups, err)
	}
	keys, err := c.Keys(ctx(t), p+":{bcast.gone}:*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("keys after Unsubscribe: %v, %v; want none", keys, err)
	}
}

// Unsubscribe gives the entries it read back to the group at once (not
// after AckWait): those not handled yet without counting an attempt, and,
// when its context ends with a handler stuck, the one in flight with its
// attempt counted.
func TestUnsubscribeGivesBackAtOnce(t *testing.T) {
	p := prefix()
	b1, b2 := open(t, redis.WithPrefix(p)), open(t, redis.WithPrefix(p))
	release := make(chan struct{})
	defer close(release)
	first := newCollector()
	sub := subscribe(t, b1, "giveback", first.handler(func(ctx context.Context, _ *broker.Message) error {
		<-release // stuck, ignoring its context
		return nil
	}), broker.Queue("g"), broker.Concurrency(1))
	ids := map[string]bool{}
	for i := range 50 {
		m := &broker.Message{Body: []byte{byte(i)}}
		publish(t, b1, "giveback", m)
		ids[m.ID] = true
	}
	stuck := first.wait(t, 1, 10*time.Second)[0].ID
	uctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := sub.Unsubscribe(uctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Unsubscribe with a stuck handler: %v, want DeadlineExceeded", err)
	}
	second := newCollector()
	start := time.Now()
	subscribe(t, b2, "giveback", second.handler(nil), broker.Queue("g"))
	ms := second.wait(t, 50, 10*time.Second)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the given-back entries took %v (AckWait is 30s: they were not given back)", d)
	}
	for _, m := range ms {
		if !ids[m.ID] {
			t.Errorf("message %s delivered twice or never published", m.ID)
		}
		delete(ids, m.ID)
		want := 1
		if m.ID == stuck {
			want = 2
		}
		if m.Attempt != want {
			t.Errorf("message %s arrived with Attempt %d, want %d", m.ID, m.Attempt, want)
		}
	}
	if n := first.len(); n != 1 {
		t.Errorf("the member that left had %d deliveries, want 1", n)
	}
}

// A handler slower than AckWait keeps its entry: no other member gets it
// while it runs.
func TestSlowHandlerKeepsEntry(t *testing.T) {
	p := prefix()
	b1, b2 := open(t, redis.WithPrefix(p)), open(t, redis.WithPrefix(p))
	const ackWait = 150 * time.Millisecond
	release := make(chan struct{})
	slow, other := newCollector(), newCollector()
	subscribe(t, b1, "slow", slow.handler(func(context.Context, *broker.Message) error {
		<-release
		return nil
	}), broker.Queue("g"), broker.AckWait(ackWait))
	subscribe(t, b2, "slow", other.handler(nil), broker.Queue("g"), broker.AckWait(ackWait))
	// Publish until the slow member has one (the other may get some first).
	for slow.len() == 0 {
		publish(t, b1, "slow", &broker.Message{Body: []byte("x")})
		select {
		case <-slow.ch:
			slow.ch <- struct{}{}
		case <-time.After(20 * time.Millisecond):
		}
	}
	held := slow.wait(t, 1, time.Second)[0].ID
	<-time.After(6 * ackWait) // the quiet period: the held entry must stay with the slow member
	close(release)
	other.mu.Lock()
	defer other.mu.Unlock()
	for _, m := range other.ms {
		if m.ID == held {
			t.Errorf("the other member got message %s while the slow handler still ran it", held)
		}
	}
}

// Headers whose names look like the entry's own fields, and long IDs,
// travel intact.
func TestFieldLikeHeadersAndLongID(t *testing.T) {
	b := open(t, withPrefix())
	c := newCollector()
	subscribe(t, b, "fields", c.handler(nil))
	h := broker.Header{"id": "not the id", "b": "not the body", "h:x": "nested", "": "empty name", "m": "redo field"}
	m := &broker.Message{ID: strings.Repeat("i", 1000), Header: h, Body: []byte("body")}
	publish(t, b, "fields", m)
	got := c.wait(t, 1, 10*time.Second)[0]
	if got.ID != m.ID || string(got.Body) != "body" || len(got.Header) != len(h) {
		t.Fatalf("got ID %d bytes, body %q, header %v", len(got.ID), got.Body, got.Header)
	}
	for k, v := range h {
		if got.Header[k] != v {
			t.Errorf("header %q = %q, want %q", k, got.Header[k], v)
		}
	}
}

// When its stream is deleted under it (or the server lost its data), a
// subscription creates its consumer group again and goes on consuming.
func TestStreamDeletedUnderSubscription(t *testing.T) {
	p := prefix()
	b := open(t, redis.WithPrefix(p), redis.WithBlock(50*time.Millisecond))
	c := newCollector()
	subscribe(t, b, "deleted", c.handler(nil), broker.Queue("g"))
	publish(t, b, "deleted", &broker.Message{Body: []byte("before")})
	c.wait(t, 1, 10*time.Second)
	if err := client(t, b).Del(ctx(t), p+":{deleted}", p+":{deleted}:g:redo").Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for c.len() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no message delivered after the stream was deleted")
		}
		publish(t, b, "deleted", &broker.Message{Body: []byte("after")})
		select {
		case <-c.ch:
			c.ch <- struct{}{}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// A slow member of a queue group holds few entries (its window follows its
// handling rate), so a fast member handles most of a backlog instead of
// waiting while the slow one sits on half of it.
func TestSlowMemberDoesNotHoard(t *testing.T) {
	p := prefix()
	slowB, fastB := open(t, redis.WithPrefix(p)), open(t, redis.WithPrefix(p))
	slow, fast := newCollector(), newCollector()
	subscribe(t, slowB, "hoard", slow.handler(func(ctx context.Context, _ *broker.Message) error {
		select { // 50ms of work per message
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
		}
		return nil
	}), broker.Queue("g"))
	subscribe(t, fastB, "hoard", fast.handler(nil), broker.Queue("g"))
	ms := make([]*broker.Message, 300)
	for i := range ms {
		ms[i] = &broker.Message{Body: []byte{byte(i)}}
	}
	if err := broker.PublishBatch(ctx(t), slowB, "hoard", ms); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for slow.len()+fast.len() < len(ms) {
		select {
		case <-fast.ch:
		case <-slow.ch:
		case <-deadline:
			t.Fatalf("handled %d (slow) + %d (fast) of %d", slow.len(), fast.len(), len(ms))
		}
	}
	t.Logf("slow member handled %d, fast member %d", slow.len(), fast.len())
	if slow.len() > 30 {
		t.Errorf("the slow member (50ms a message) handled %d of %d messages: it held more than its share", slow.len(), len(ms))
	}
}
