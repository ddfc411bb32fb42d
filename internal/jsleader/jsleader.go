// Package jsleader reads a JetStream stream through its leader.
//
// A replicated key-value bucket answers reads from any of its replicas:
// nats.go's KV Get sends a direct get, which every replica answers, and a
// follower may not have applied a write its leader has already
// acknowledged. Herald's stores read their own writes (the dedupe store
// finds a record another email replica completed; the registry's Lookup
// finds what was registered before it), so they read through the leader.
// The non-direct get ("$JS.API.STREAM.MSG.GET.<stream>") is answered by the
// stream leader only.
package jsleader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultTimeout bounds a read whose context has no deadline, as
// JetStream's own API calls are bounded.
const DefaultTimeout = 5 * time.Second

// ErrBadReply is returned for a reply that is not a message get's answer.
var ErrBadReply = errors.New("jsleader: malformed reply")

// LastMsg returns the newest message of stream whose subject matches
// subject (which may hold wildcards), as the stream's leader has it, or an
// error wrapping [jetstream.ErrMsgNotFound] when there is none. The answer
// reflects every write acknowledged before the call.
func LastMsg(ctx context.Context, js jetstream.JetStream, stream, subject string) (*jetstream.RawStreamMsg, error) {
	req, err := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{subject})
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	reply, err := js.Conn().RequestWithContext(ctx, apiPrefix(js.Options())+"STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, fmt.Errorf("leader get of %s in stream %s: %w", subject, stream, err)
	}
	msg, err := decodeReply(reply.Data)
	if err != nil {
		return nil, fmt.Errorf("leader get of %s in stream %s: %w", subject, stream, err)
	}
	return msg, nil
}

// decodeReply decodes the server's reply to a message get.
func decodeReply(data []byte) (*jetstream.RawStreamMsg, error) {
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, jetstream.ErrMsgNotFound
	case resp.Error != nil:
		return nil, resp.Error
	case resp.Message == nil || resp.Message.Seq == 0:
		return nil, fmt.Errorf("%w: neither a message nor an error", ErrBadReply)
	}
	m := resp.Message
	msg := &jetstream.RawStreamMsg{Subject: m.Subject, Sequence: m.Seq, Data: m.Data, Time: m.Time}
	if len(m.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(m.Header)
		if err != nil {
			return nil, fmt.Errorf("%w: headers: %w", ErrBadReply, err)
		}
		msg.Header = h
	}
	return msg, nil
}

// IsKVMarker reports whether a key-value bucket's message is a delete or
// purge marker, written by a client (KV-Operation) or by the server when a
// key's TTL ran out (Nats-Marker-Reason), rather than a value.
func IsKVMarker(msg *jetstream.RawStreamMsg) bool {
	return msg.Header.Get("KV-Operation") != "" || msg.Header.Get(jetstream.MarkerReasonHeader) != ""
}

// apiPrefix is the JetStream API prefix js sends its requests to.
func apiPrefix(o jetstream.JetStreamOptions) string {
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	}
	return jetstream.DefaultAPIPrefix
}
