package gomicro

import "errors"

// Sentinel errors of the plugin. Errors from Herald's backends are wrapped as
// they are, so [errors.Is] also finds Herald's sentinels (broker.ErrClosed,
// broker.ErrBadTopic, broker.ErrTooLarge…) in them.
var (
	// ErrNotConnected is returned by Publish and Subscribe before Connect
	// and after Disconnect.
	ErrNotConnected = errors.New("gomicro: not connected")
	// ErrNotAcked is the error of a delivery to a subscriber with
	// go-micro's DisableAutoAck whose handler returned without calling
	// Event.Ack: the message is delivered again.
	ErrNotAcked = errors.New("gomicro: event not acknowledged")
	// ErrSettled is returned by Event.Ack called after the delivery was
	// settled without it (the handler returned and the message went back
	// for redelivery): that Ack cannot take effect.
	ErrSettled = errors.New("gomicro: delivery already settled")
)
