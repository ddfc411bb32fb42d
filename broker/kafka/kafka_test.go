package kafka_test

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/brokertest"
	"github.com/herald-dev/herald/broker/kafka"
)

func TestConformance(t *testing.T) {
	c := startCluster(t)
	brokertest.Run(t, func(t *testing.T) broker.Broker { return c.open(t) }, brokertest.Features{
		Persistent: true,
		// Without a Key, a message's key is its ID, which spreads one
		// publisher's messages over the partitions: order holds per key.
		OrderedPerPublisher: false,
		Restart:             c.restart,
		Timeout:             15 * time.Second,
	})
}

func TestRoundTripAndRetryTopic(t *testing.T) {
	c := startCluster(t)
	pub, sub := c.open(t), c.open(t)
	ctx := context.Background()
	topic := name(t, "retry")
	got := newCollector()
	s, err := sub.Subscribe(ctx, topic, func(_ context.Context, m *broker.Message) error {
		got.add(m)
		if m.Attempt < 3 {
			return errors.New("not yet")
		}
		return nil
	}, broker.Queue("workers"), broker.RetryBackoff(broker.Backoff{Initial: 50 * time.Millisecond, Max: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe(ctx)
	m := &broker.Message{Header: broker.Header{"k": "v"}, Body: []byte("x")}
	if err := pub.Publish(ctx, topic, m); err != nil {
		t.Fatal(err)
	}
	ms := got.wait(t, 3, 10*time.Second)
	for i, d := range ms {
		if d.ID != m.ID || d.Attempt != i+1 || d.Topic != topic || d.Header.Get("k") != "v" {
			t.Errorf("delivery %d: ID %q attempt %d topic %q header %v", i, d.ID, d.Attempt, d.Topic, d.Header)
		}
	}
	if ms[1].PublishedAt.Sub(ms[0].PublishedAt).Abs() > time.Millisecond {
		t.Errorf("PublishedAt changed on redelivery: %v then %v", ms[0].PublishedAt, ms[1].PublishedAt)
	}
}

// A record that fails does not hold back the records after it in its
// partition: they are handled while it waits in the retry topic.
func TestRetryDoesNotBlockPartition(t *testing.T) {
	c := startCluster(t)
	b := c.open(t, kafka.WithPartitions(1))
	ctx := context.Background()
	topic := name(t, "noblock")
	got := newCollector()
	s, err := b.Subscribe(ctx, topic, func(_ context.Context, m *broker.Message) error {
		got.add(m)
		if string(m.Body) == "poison" && m.Attempt == 1 {
			return errors.New("fails once")
		}
		return nil
	}, broker.Queue("workers"), broker.RetryBackoff(broker.Backoff{Initial: 2 * time.Second, Max: 2 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe(ctx)
	for _, body := range []string{"poison", "a", "b", "c"} {
		if err := b.Publish(ctx, topic, &broker.Message{Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	ms := got.wait(t, 4, 5*time.Second)
	if time.Since(start) > 1500*time.Millisecond {
		t.Errorf("the records after a failed one waited %v: the partition was blocked", time.Since(start))
	}
	if string(ms[3].Body) != "c" {
		t.Errorf("fourth delivery %q, want c (the poison message comes back later)", ms[3].Body)
	}
	ms = got.wait(t, 5, 10*time.Second)
	if string(ms[4].Body) != "poison" || ms[4].Attempt != 2 {
		t.Errorf("fifth delivery %q attempt %d, want poison attempt 2", ms[4].Body, ms[4].Attempt)
	}
}

// Messages with the same Key keep their order even with Concurrency > 1.
func TestKeyOrder(t *testing.T) {
	c := startCluster(t)
	b := c.open(t)
	ctx := context.Background()
	topic := name(t, "keys")
	got := newCollector()
	s, err := b.Subscribe(ctx, topic, func(_ context.Context, m *broker.Message) error {
		got.add(m)
		return nil
	}, broker.Queue("workers"), broker.Concurrency(8))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe(ctx)
	const perKey = 100
	ms := make([]*broker.Message, 0, 3*perKey)
	for i := range perKey {
		for _, k := range []string{"a", "b", "c"} {
			ms = append(ms, &broker.Message{Header: broker.Header{"key": k, "seq": strconv.Itoa(i)}})
		}
	}
	for _, k := range []string{"a", "b", "c"} {
		var batch []*broker.Message
		for _, m := range ms {
			if m.Header["key"] == k {
				batch = append(batch, m)
			}
		}
		if err := b.PublishBatch(ctx, topic, batch, broker.Key(k)); err != nil {
			t.Fatal(err)
		}
	}
	last := map[string]int{}
	for _, m := range got.wait(t, 3*perKey, 10*time.Second) {
		seq, _ := strconv.Atoi(m.Header["seq"])
		if p, ok := last[m.Header["key"]]; ok && seq != p+1 {
			t.Fatalf("key %s: seq %d after %d", m.Header["key"], seq, p)
		}
		last[m.Header["key"]] = seq
	}
}

func TestTooLarge(t *testing.T) {
	c := startCluster(t)
	b := c.open(t, kafka.WithMaxMessageBytes(64<<10))
	err := b.Publish(context.Background(), name(t, "big"), &broker.Message{Body: make([]byte, 100<<10)})
	if !errors.Is(err, broker.ErrTooLarge) {
		t.Fatalf("Publish of 100 KiB with a 64 KiB limit: %v, want ErrTooLarge", err)
	}
}

func TestOpenURL(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	for _, bad := range []string{
		"kafka://",
		"kafka://h:1?nope=1",
		"kafka://h:1?partitions=x",
		"kafka://h:1?tls=maybe",
		"kafka://h:1?sasl=plain",
		"kafka://h:1/path",
	} {
		u, _ := url.Parse(bad)
		if _, err := kafka.OpenURL(ctx, u); !errors.Is(err, broker.ErrBadURL) {
			t.Errorf("OpenURL(%q) = %v, want ErrBadURL", bad, err)
		}
	}
	u, _ := url.Parse("kafka://" + c.addrs()[0] + "?partitions=2&heartbeat=100ms&session_timeout=1500ms")
	b, err := kafka.OpenURL(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	if err := b.Publish(ctx, name(t, "url"), &broker.Message{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
}
