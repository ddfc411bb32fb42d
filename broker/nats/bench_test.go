package nats_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/internal/bench/natsraw"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const benchSize = 256

func benchBody() []byte {
	b := make([]byte, benchSize)
	_, _ = rand.Read(b)
	return b
}

func benchMessages(n int, body []byte) []*broker.Message {
	ms := make([]*broker.Message, n)
	for i := range ms {
		ms[i] = &broker.Message{Body: body}
	}
	return ms
}

// BenchmarkPublish publishes 256-byte messages one at a time, each waiting
// for its PubAck.
func BenchmarkPublish(b *testing.B) {
	br := open(b, startServer(b))
	ctx := context.Background()
	body := benchBody()
	if err := br.Publish(ctx, "bench.publish", &broker.Message{Body: body}); err != nil {
		b.Fatal(err) // creates the stream outside the timing
	}
	b.SetBytes(benchSize)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := br.Publish(ctx, "bench.publish", &broker.Message{Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkPublishBatch publishes 256-byte messages with PublishBatch, in
// batches of 1000.
func BenchmarkPublishBatch(b *testing.B) {
	br := open(b, startServer(b))
	ctx := context.Background()
	body := benchBody()
	if err := br.Publish(ctx, "bench.batch", &broker.Message{Body: body}); err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	b.SetBytes(benchSize)
	b.ResetTimer()
	start := time.Now()
	for done := 0; done < b.N; done += batch {
		if err := br.PublishBatch(ctx, "bench.batch", benchMessages(min(batch, b.N-done), body)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkConsume handles and acknowledges b.N 256-byte messages published
// beforehand, through a new queue group of Concurrency 256.
func BenchmarkConsume(b *testing.B) {
	br := open(b, startServer(b))
	ctx := context.Background()
	topic := "bench.consume"
	if err := br.PublishBatch(ctx, topic, benchMessages(b.N, benchBody())); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	b.ResetTimer()
	rate, err := consumeAll(ctx, br, topic, b.N, 256)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rate, "msgs/s")
}

// consumeAll joins a new queue group on topic and returns the rate at which
// it handles and acknowledges the n messages waiting there.
func consumeAll(ctx context.Context, br broker.Broker, topic string, n, concurrency int) (float64, error) {
	var got atomic.Int64
	done := make(chan struct{})
	h := func(context.Context, *broker.Message) error {
		if got.Add(1) == int64(n) {
			close(done)
		}
		return nil
	}
	start := time.Now()
	sub, err := br.Subscribe(ctx, topic, h, broker.Queue("bench"), broker.Concurrency(concurrency))
	if err != nil {
		return 0, err
	}
	defer sub.Unsubscribe(context.WithoutCancel(ctx))
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("consumed %d of %d", got.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// BenchmarkVsRaw measures Herald against raw nats.go on one embedded server,
// in one process: Herald's PublishBatch against natsraw's publish phase and
// Herald's consume-and-ack against natsraw's consume phase. The two run in
// turn, HERALD_BENCH_ROUNDS times (default 3), and the best rate of each is
// kept, so that a burst of load from elsewhere on the machine does not
// decide the ratio. HERALD_BENCH_MESSAGES sets the messages per phase
// (default 100,000), HERALD_BENCH_CONCURRENCY Herald's consumer concurrency
// (default 256).
//
// It also measures raw nats.go publishing with a Nats-Msg-Id on every
// message, which is what Herald publishes (its deduplication): the gap
// between natsraw and that line is the cost of JetStream's deduplication,
// not of Herald. Run it once:
//
//	go test -run '^$' -bench VsRaw -benchtime 1x ./broker/nats/
func BenchmarkVsRaw(b *testing.B) {
	n := envInt(b, "HERALD_BENCH_MESSAGES", 100_000)
	conc := envInt(b, "HERALD_BENCH_CONCURRENCY", 256)
	rounds := envInt(b, "HERALD_BENCH_ROUNDS", 3)
	srv := startServer(b)
	br := open(b, srv)
	ctx := context.Background()
	body := benchBody()
	for range b.N {
		var rawPub, rawPubID, rawCons, heraldPub, heraldCons float64
		for round := range rounds {
			rp, rc, err := natsraw.Run(ctx, srv.ClientURL(), n, benchSize)
			if err != nil {
				b.Fatal(err)
			}
			rpi, err := rawPublishWithIDs(ctx, srv.ClientURL(), n, body)
			if err != nil {
				b.Fatal(err)
			}
			topic := "bench.vsraw." + strconv.Itoa(int(time.Now().UnixNano()))
			ms := benchMessages(n, body)
			if err := br.Publish(ctx, topic, &broker.Message{Body: body}); err != nil {
				b.Fatal(err) // the stream, outside the timing, as natsraw creates its own
			}
			start := time.Now()
			if err := br.PublishBatch(ctx, topic, ms); err != nil {
				b.Fatal(err)
			}
			hp := float64(n) / time.Since(start).Seconds()
			hc, err := consumeAll(ctx, br, topic, n+1, conc)
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("round %d: publish raw %.0f/s, raw with Nats-Msg-Id %.0f/s, Herald %.0f/s (%.2f× raw); consume+ack raw %.0f/s, Herald %.0f/s (%.2f×)",
				round+1, rp, rpi, hp, hp/rp, rc, hc, hc/rc)
			rawPub, rawPubID, rawCons = max(rawPub, rp), max(rawPubID, rpi), max(rawCons, rc)
			heraldPub, heraldCons = max(heraldPub, hp), max(heraldCons, hc)
		}
		b.ReportMetric(rawPub, "raw-pub-msgs/s")
		b.ReportMetric(rawPubID, "raw-pub-msgid-msgs/s")
		b.ReportMetric(heraldPub, "herald-pub-msgs/s")
		b.ReportMetric(heraldPub/rawPub, "pub-ratio")
		b.ReportMetric(rawCons, "raw-consume-msgs/s")
		b.ReportMetric(heraldCons, "herald-consume-msgs/s")
		b.ReportMetric(heraldCons/rawCons, "consume-ratio")
		b.Logf("best of %d rounds, %d messages of %d bytes: publish raw %.0f/s, raw with Nats-Msg-Id %.0f/s (%.2f× raw), Herald PublishBatch %.0f/s (%.2f× raw, %.2f× raw with Nats-Msg-Id); consume+ack raw %.0f/s, Herald (Concurrency %d) %.0f/s (%.2f×)",
			rounds, n, benchSize, rawPub, rawPubID, rawPubID/rawPub, heraldPub, heraldPub/rawPub, heraldPub/rawPubID, rawCons, conc, heraldCons, heraldCons/rawCons)
	}
}

// rawPublishWithIDs is natsraw's publish phase with a Nats-Msg-Id on each
// message, as Herald sends: it isolates the cost of JetStream's
// deduplication from Herald's own.
func rawPublishWithIDs(ctx context.Context, url string, n int, body []byte) (float64, error) {
	nc, err := natsgo.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	var failed atomic.Int64
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(natsraw.MaxPending),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *natsgo.Msg, error) { failed.Add(1) }))
	if err != nil {
		return 0, err
	}
	name := "rawid_" + strconv.Itoa(int(time.Now().UnixNano()))
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name}, Storage: jetstream.FileStorage}); err != nil {
		return 0, err
	}
	defer js.DeleteStream(context.WithoutCancel(ctx), name)
	start := time.Now()
	for i := 0; i < n; {
		m := &natsgo.Msg{Subject: name, Data: body, Header: natsgo.Header{jetstream.MsgIDHeader: {broker.NewID()}}}
		_, err := js.PublishMsgAsync(m)
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			continue
		}
		if err != nil {
			return 0, err
		}
		i++
	}
	<-js.PublishAsyncComplete()
	rate := float64(n) / time.Since(start).Seconds()
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("%d publishes failed", f)
	}
	return rate, nil
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
