// Package natslag reads the consumer lag of Herald's NATS JetStream
// backend, for [metrics.Metrics.LagCollector]: the messages of a queue
// group's durable consumer not yet delivered (NumPending) plus those
// delivered and not yet acknowledged (NumAckPending).
package natslag

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-dev/herald/broker"
	natsbroker "github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/metrics"
)

// Func returns the lag function of b, a NATS broker (or a wrapper of one
// that passes [broker.As] on) whose streams are named with prefix
// ([natsbroker.DefaultPrefix] when empty), and true; or false when b is not
// on NATS JetStream.
func Func(b broker.Broker, prefix string) (metrics.LagFunc, bool) {
	var js jetstream.JetStream
	if !broker.As(b, &js) {
		return nil, false
	}
	if prefix == "" {
		prefix = natsbroker.DefaultPrefix
	}
	return func(ctx context.Context, topic, queue string) (int64, error) {
		// The stream of a topic and the durable consumer of a group, as
		// broker/nats names them.
		stream := prefix + "~" + strings.ReplaceAll(topic, ".", "~")
		c, err := js.Consumer(ctx, stream, queue)
		if err != nil {
			return 0, err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return 0, err
		}
		return int64(info.NumPending) + int64(info.NumAckPending), nil
	}, true
}
