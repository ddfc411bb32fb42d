package jsleader_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/broker/nats/natsserver/natsservertest"
	"github.com/herald-dev/herald/internal/jsleader"
)

func jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := natsserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return natsservertest.JetStream(t, srv.ClientURL())
}

// TestLastMsg reads what kv.Get reads, by wildcard too, and tells markers
// from values.
func TestLastMsg(t *testing.T) {
	js := jetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jsleader.LastMsg(ctx, js, "KV_b", "$KV.b.svc.*"); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("empty bucket: %v, want ErrMsgNotFound", err)
	}
	if _, err := kv.Put(ctx, "svc.a", []byte("one")); err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Put(ctx, "svc.b", []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "other.a", []byte("three")); err != nil {
		t.Fatal(err)
	}
	m, err := jsleader.LastMsg(ctx, js, "KV_b", "$KV.b.svc.*")
	if err != nil {
		t.Fatal(err)
	}
	if m.Sequence != rev || m.Subject != "$KV.b.svc.b" || string(m.Data) != "two" || jsleader.IsKVMarker(m) || m.Time.IsZero() {
		t.Fatalf("last of svc.*: %+v, want svc.b at revision %d, a value", m, rev)
	}
	if err := kv.Purge(ctx, "svc.b"); err != nil {
		t.Fatal(err)
	}
	m, err = jsleader.LastMsg(ctx, js, "KV_b", "$KV.b.svc.b")
	if err != nil {
		t.Fatal(err)
	}
	if !jsleader.IsKVMarker(m) || m.Sequence <= rev {
		t.Fatalf("after a purge: %+v, want a newer marker", m)
	}
	_, err = jsleader.LastMsg(ctx, js, "KV_none", "$KV.none.>")
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamNotFound {
		t.Fatalf("a stream that does not exist: %v, want the server's stream-not-found error", err)
	}
}

// TestLastMsgBounded: with no deadline of its own, a read nobody answers
// ends after DefaultTimeout rather than never.
func TestLastMsgBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the default timeout")
	}
	nc := jetStream(t).Conn()
	// A JetStream API prefix where the test listens and never answers.
	sub, err := nc.SubscribeSync("stall.>")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	js, err := jetstream.NewWithAPIPrefix(nc, "stall")
	if err != nil {
		t.Fatal(err)
	}
	t.Parallel()
	_, err = jsleader.LastMsg(context.Background(), js, "KV_b", "$KV.b.>")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered read: %v, want the default deadline", err)
	}
	if m, err := sub.NextMsg(time.Second); err != nil || m.Subject != "stall.STREAM.MSG.GET.KV_b" {
		t.Fatalf("request sent to %v (%v), want stall.STREAM.MSG.GET.KV_b", m, err)
	}
}

func FuzzDecodeReply(f *testing.F) {
	f.Add([]byte(`{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","message":{"subject":"$KV.b.k","seq":3,"hdrs":"TkFUUy8xLjANCktWLU9wZXJhdGlvbjogUFVSR0UNCg0K","data":"","time":"2026-12-06T22:00:00Z"}}`))
	f.Add([]byte(`{"error":{"code":404,"err_code":10037,"description":"no message found"}}`))
	f.Add([]byte(`{"error":{"code":500,"err_code":1,"description":"x"}}`))
	f.Add([]byte(`{"message":{"seq":0}}`))
	f.Add([]byte(`{"message":{"seq":1,"hdrs":"eA=="}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := jsleader.DecodeReplyForTest(data)
		if err != nil {
			if m != nil {
				t.Fatalf("error %v with a message", err)
			}
			return
		}
		if m.Sequence == 0 {
			t.Fatalf("accepted a reply without a sequence: %+v", m)
		}
		_ = jsleader.IsKVMarker(m)
	})
}
