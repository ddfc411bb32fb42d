// Package bench measures a broker end to end: messages published by several
// publishers, handled by a queue-group subscriber and acknowledged, with
// every message's sequence number and send time in its body so that loss,
// duplicates and latency are counted, not estimated.
package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald/broker"
)

// Config is one benchmark run.
type Config struct {
	// Messages is how many messages are published in all.
	Messages int
	// Size is each message body's size in bytes (at least 16).
	Size int
	// Publishers is how many goroutines publish at once.
	Publishers int
	// Batch > 1 publishes through broker.PublishBatch in batches this big.
	Batch int
	// Concurrency is the subscriber's handler concurrency.
	Concurrency int
	// Idle ends the run when no message arrived for this long; what has not
	// arrived by then is lost.
	Idle time.Duration
	// Progress, if set, is called with the count of delivered messages as
	// it grows (not more often than every few milliseconds).
	Progress func(delivered int)
}

// Result is what a run measured. Rates are messages per second.
type Result struct {
	Messages        int     `json:"messages"`
	Size            int     `json:"size"`
	Publishers      int     `json:"publishers"`
	Batch           int     `json:"batch"`
	Concurrency     int     `json:"concurrency"`
	PublishedPerSec float64 `json:"published_per_sec"`
	DeliveredPerSec float64 `json:"delivered_per_sec"`
	P50ms           float64 `json:"p50_ms"`
	P99ms           float64 `json:"p99_ms"`
	Lost            int     `json:"lost"`
	Duplicates      int     `json:"duplicates"`
	PublishErrors   int     `json:"publish_errors"`
	Seconds         float64 `json:"seconds"`
}

const header = 16 // sequence number + send time, in the body's first bytes

func (c *Config) normalise() error {
	if c.Messages < 1 {
		return fmt.Errorf("bench: messages must be >= 1")
	}
	if c.Size < header {
		c.Size = header
	}
	if c.Publishers < 1 {
		c.Publishers = 1
	}
	if c.Batch < 1 {
		c.Batch = 1
	}
	if c.Concurrency < 1 {
		c.Concurrency = 1
	}
	if c.Idle <= 0 {
		c.Idle = 10 * time.Second
	}
	return nil
}

// Run publishes c.Messages messages to a fresh topic of b while a fresh
// queue group consumes them, and measures.
func Run(ctx context.Context, b broker.Broker, c Config) (Result, error) {
	if err := c.normalise(); err != nil {
		return Result{}, err
	}
	topic := "bench." + broker.NewID()[24:]
	var (
		seen      = make([]atomic.Uint32, c.Messages)
		latencies = make([]int64, c.Messages) // ns, written once per seq by its first delivery
		delivered atomic.Int64
		dups      atomic.Int64
		lastAt    atomic.Int64
		done      = make(chan struct{})
		doneOnce  sync.Once
	)
	h := func(_ context.Context, m *broker.Message) error {
		if len(m.Body) < header {
			return broker.Permanent(errors.New("bench: short body"))
		}
		seq := binary.BigEndian.Uint64(m.Body)
		if seq >= uint64(c.Messages) {
			return broker.Permanent(fmt.Errorf("bench: sequence %d out of range", seq))
		}
		now := time.Now().UnixNano()
		if seen[seq].Add(1) > 1 {
			dups.Add(1)
			return nil
		}
		latencies[seq] = now - int64(binary.BigEndian.Uint64(m.Body[8:]))
		lastAt.Store(now)
		if delivered.Add(1) == int64(c.Messages) {
			doneOnce.Do(func() { close(done) })
		}
		return nil
	}
	sub, err := b.Subscribe(ctx, topic, h, broker.Queue("bench"), broker.Concurrency(c.Concurrency))
	if err != nil {
		return Result{}, fmt.Errorf("bench: subscribe: %w", err)
	}
	defer sub.Unsubscribe(context.WithoutCancel(ctx))

	start := time.Now()
	pubErrs := publishAll(ctx, b, topic, c)
	published := time.Since(start)

	stopProgress := progress(c.Progress, &delivered)
	idle := time.NewTimer(c.Idle)
	defer idle.Stop()
	last := delivered.Load()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-ctx.Done():
			break wait
		case <-idle.C:
			now := delivered.Load()
			if now == last {
				break wait
			}
			last = now
			idle.Reset(c.Idle)
		}
	}
	stopProgress()
	elapsed := time.Duration(lastAt.Load() - start.UnixNano())
	got := int(delivered.Load())

	lat := make([]int64, 0, got)
	for i := range seen {
		if seen[i].Load() > 0 {
			lat = append(lat, latencies[i])
		}
	}
	slices.Sort(lat)
	return Result{
		Messages:        c.Messages,
		Size:            c.Size,
		Publishers:      c.Publishers,
		Batch:           c.Batch,
		Concurrency:     c.Concurrency,
		PublishedPerSec: rate(c.Messages-pubErrs, published),
		DeliveredPerSec: rate(got, elapsed),
		P50ms:           percentile(lat, 0.50),
		P99ms:           percentile(lat, 0.99),
		Lost:            c.Messages - got,
		Duplicates:      int(dups.Load()),
		PublishErrors:   pubErrs,
		Seconds:         time.Since(start).Seconds(),
	}, ctx.Err()
}

// publishAll publishes the messages from c.Publishers goroutines and
// returns how many could not be published. A message whose Publish fails is
// retried (the run measures delivery, not give-up); it counts as a publish
// error only if the context ends first.
func publishAll(ctx context.Context, b broker.Broker, topic string, c Config) int {
	var (
		next   atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	for range c.Publishers {
		wg.Go(func() {
			batch := make([]*broker.Message, 0, c.Batch)
			for {
				first := next.Add(int64(c.Batch)) - int64(c.Batch)
				if first >= int64(c.Messages) {
					return
				}
				last := min(first+int64(c.Batch), int64(c.Messages))
				batch = batch[:0]
				for seq := first; seq < last; seq++ {
					body := make([]byte, c.Size)
					binary.BigEndian.PutUint64(body, uint64(seq))
					binary.BigEndian.PutUint64(body[8:], uint64(time.Now().UnixNano()))
					batch = append(batch, &broker.Message{Body: body})
				}
				for {
					var err error
					if len(batch) == 1 {
						err = b.Publish(ctx, topic, batch[0])
					} else {
						err = broker.PublishBatch(ctx, b, topic, batch)
					}
					if err == nil {
						break
					}
					if !retryable(ctx, err) {
						failed.Add(last - first)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	return int(failed.Load())
}

// retryable reports whether a failed publish should be tried again, after
// a short pause so an outage is not a busy loop.
func retryable(ctx context.Context, err error) bool {
	if errors.Is(err, broker.ErrClosed) || errors.Is(err, broker.ErrBadTopic) || errors.Is(err, broker.ErrTooLarge) || errors.Is(err, broker.ErrInvalidOption) {
		return false
	}
	t := time.NewTimer(10 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func progress(f func(int), delivered *atomic.Int64) (stop func()) {
	if f == nil {
		return func() {}
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				f(int(delivered.Load()))
				return
			case <-t.C:
				f(int(delivered.Load()))
			}
		}
	}()
	return func() { close(quit); <-finished }
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 || n <= 0 {
		return 0
	}
	return math.Round(float64(n) / d.Seconds())
}

func percentile(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return math.Round(float64(sorted[i])/1e4) / 100 // ms with 2 decimals
}
