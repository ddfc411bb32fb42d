package nats

import (
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// JetStream's acknowledgement protocol: a delivery is settled by a message
// to its reply subject ("$JS.ACK.…") whose body says how. The broker speaks
// it itself because it receives its deliveries as plain *nats.Msg on the
// inbox it owns (see pull.go), not as jetstream.Msg; each body below is what
// jetstream.Msg's methods of the same name send.
const (
	ackBody        = "+ACK"
	nakBody        = "-NAK"
	inProgressBody = "+WPI"
	termBody       = "+TERM"
)

// isDelivery reports whether m, received on a pull's inbox, is a message of
// the stream rather than a status from the server (a heartbeat, the end of a
// pull…): JetStream gives every delivery an acknowledgement subject, and a
// status none (or, for flow control, one that is not "$JS.ACK.").
func isDelivery(m *nats.Msg) bool {
	return strings.HasPrefix(m.Reply, ackPrefix)
}

// ackPrefix starts the reply subject of every JetStream delivery.
const ackPrefix = "$JS.ACK."

// ack tells JetStream the delivery was handled.
func (s *subscription) ack(m *nats.Msg) error {
	return s.b.nc.Publish(m.Reply, []byte(ackBody))
}

// nak asks JetStream to redeliver m after delay (at once when delay is 0).
func (s *subscription) nak(m *nats.Msg, delay time.Duration) error {
	if delay <= 0 {
		return s.b.nc.Publish(m.Reply, []byte(nakBody))
	}
	var buf [48]byte
	body := append(buf[:0], nakBody+` {"delay": `...)
	body = strconv.AppendInt(body, delay.Nanoseconds(), 10)
	body = append(body, '}')
	return s.b.nc.Publish(m.Reply, body)
}

// inProgress resets m's AckWait at the server: its handler, or its place in
// the queue, is still alive.
func (s *subscription) inProgress(m *nats.Msg) error {
	return s.b.nc.Publish(m.Reply, []byte(inProgressBody))
}

// term tells JetStream never to redeliver m; reason goes into the server's
// advisory.
func (s *subscription) term(m *nats.Msg, reason string) error {
	return s.b.nc.Publish(m.Reply, []byte(termBody+" "+reason))
}
