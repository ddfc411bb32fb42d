// Package amqpraw is the raw amqp091-go baseline of Herald's RabbitMQ
// backend: what the engine's own client does at its best with the same
// guarantees (publisher confirms, manual acknowledgements, a durable quorum
// queue behind a topic exchange), measured in the same process against the
// same server, so that Herald's figures can be given as a ratio to it.
package amqpraw

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Settings of the baseline.
const (
	// Window is how many publishes may await their confirm at once.
	Window = 2048
	// Prefetch is the consumer's QoS prefetch count.
	Prefetch = 256
)

// Run measures the raw client on the server at url with messages messages
// of size bytes, through a topic exchange to one durable quorum queue:
//
//   - publish: persistent messages on one confirm-mode channel, at most
//     [Window] unconfirmed, the rate being messages over the time until the
//     last confirm;
//   - consume: with the messages in the queue, one consumer with a prefetch
//     of [Prefetch] acknowledging each message (basic.ack, not multiple),
//     until every message was acknowledged.
//
// The exchange and queue are deleted afterwards.
func Run(ctx context.Context, url string, messages, size int) (publishedPerSec, consumedPerSec float64, err error) {
	if messages < 1 {
		return 0, 0, errors.New("amqpraw: messages must be >= 1")
	}
	size = max(size, 8)
	conn, err := amqp.DialConfig(url, amqp.Config{Heartbeat: 10 * time.Second, Locale: "en_US"})
	if err != nil {
		return 0, 0, fmt.Errorf("amqpraw: dial: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, 0, fmt.Errorf("amqpraw: channel: %w", err)
	}
	name := "herald-bench-raw-" + strconv.FormatUint(rand.Uint64(), 36)
	if err := ch.ExchangeDeclare(name, amqp.ExchangeTopic, false, true, false, false, nil); err != nil {
		return 0, 0, fmt.Errorf("amqpraw: declare exchange: %w", err)
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}); err != nil {
		return 0, 0, fmt.Errorf("amqpraw: declare queue: %w", err)
	}
	defer func() {
		if c, err := conn.Channel(); err == nil {
			_, _ = c.QueueDelete(name, false, false, false)
			_ = c.ExchangeDelete(name, false, false)
			_ = c.Close()
		}
	}()
	if err := ch.QueueBind(name, "bench.raw", name, false, nil); err != nil {
		return 0, 0, fmt.Errorf("amqpraw: bind: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		return 0, 0, fmt.Errorf("amqpraw: confirm mode: %w", err)
	}

	start := time.Now()
	queue := make([]*amqp.DeferredConfirmation, 0, Window)
	wait := func(dc *amqp.DeferredConfirmation) error {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("amqpraw: negative confirm")
		}
		return nil
	}
	for i := range messages {
		if len(queue) == Window {
			if err := wait(queue[0]); err != nil {
				return 0, 0, err
			}
			queue = queue[1:]
		}
		body := make([]byte, size)
		binary.BigEndian.PutUint64(body, uint64(i))
		dc, err := ch.PublishWithDeferredConfirm(name, "bench.raw", false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, MessageId: strconv.Itoa(i), Body: body,
		})
		if err != nil {
			return 0, 0, fmt.Errorf("amqpraw: publish: %w", err)
		}
		queue = append(queue, dc)
	}
	for _, dc := range queue {
		if err := wait(dc); err != nil {
			return 0, 0, err
		}
	}
	published := time.Since(start)

	cch, err := conn.Channel()
	if err != nil {
		return 0, 0, fmt.Errorf("amqpraw: channel: %w", err)
	}
	if err := cch.Qos(Prefetch, 0, false); err != nil {
		return 0, 0, fmt.Errorf("amqpraw: qos: %w", err)
	}
	start = time.Now()
	deliveries, err := cch.Consume(name, "", false, false, false, false, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("amqpraw: consume: %w", err)
	}
	idle := time.NewTimer(10 * time.Second)
	defer idle.Stop()
	for got := 0; got < messages; {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return 0, 0, fmt.Errorf("amqpraw: consumer closed after %d of %d messages", got, messages)
			}
			if err := d.Ack(false); err != nil {
				return 0, 0, fmt.Errorf("amqpraw: ack: %w", err)
			}
			got++
		case <-idle.C:
			return 0, 0, fmt.Errorf("amqpraw: consumed %d of %d messages, then none for 10s", got, messages)
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
		if got%1000 == 0 {
			idle.Reset(10 * time.Second)
		}
	}
	consumed := time.Since(start)
	return rate(messages, published), rate(messages, consumed), nil
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
