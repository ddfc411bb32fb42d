package httpbroker_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	httpbroker "github.com/herald-dev/herald/broker/http"
	"github.com/herald-dev/herald/registry"
	"github.com/herald-dev/herald/registry/mem"
)

// sign computes a delivery signature the way the package documentation
// describes it, independently of the package's own code.
func sign(secret []byte, path, ts, nonce string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "herald-delivery-v1\n%s\n%s\n%s\n", path, ts, nonce)
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// endpointOf returns the registered endpoint URL of the only subscription
// of topic.
func endpointOf(t *testing.T, c *cluster, topic string) string {
	t.Helper()
	reg, _ := mem.New(mem.WithStore(c.store))
	defer reg.Close(context.Background())
	insts, err := reg.Lookup(context.Background(), httpbroker.ServiceName(topic))
	if err != nil || len(insts) != 1 {
		t.Fatalf("lookup of the subscription: %v, %d instances", err, len(insts))
	}
	return insts[0].Addr
}

type delivery struct {
	ts, nonce, sig string
	body           []byte
}

func post(t *testing.T, endpoint string, d delivery) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(d.body))
	if err != nil {
		t.Fatal(err)
	}
	if d.ts != "" {
		req.Header.Set(httpbroker.HeaderTimestamp, d.ts)
	}
	if d.nonce != "" {
		req.Header.Set(httpbroker.HeaderNonce, d.nonce)
	}
	if d.sig != "" {
		req.Header.Set(httpbroker.HeaderSignature, d.sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var nonceSeq atomic.Int64

func freshNonce() string { return fmt.Sprintf("%032x", time.Now().UnixNano()+nonceSeq.Add(1)) }

// TestRefusesForgedTamperedReplayed: deliveries that are unsigned, signed
// with another secret, altered after signing, sent to another subscription,
// replayed, stale, oversized or malformed are refused with their status and
// counted, and never reach the handler; the one valid delivery does, once.
func TestRefusesForgedTamperedReplayed(t *testing.T) {
	c := newCluster()
	b := c.open(t, httpbroker.WithMaxMessageSize(64<<10), httpbroker.WithBatch(16, 64<<10))
	topic := "security.test"
	var handled atomic.Int32
	var bodies [][]byte
	ctx := context.Background()
	sub, err := b.Subscribe(ctx, topic, func(_ context.Context, m *broker.Message) error {
		handled.Add(1)
		bodies = append(bodies, m.Body)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe(ctx)
	other, err := b.Subscribe(ctx, "security.other", func(context.Context, *broker.Message) error {
		handled.Add(100)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Unsubscribe(ctx)
	ep := endpointOf(t, c, topic)
	otherEP := endpointOf(t, c, "security.other")
	path := func(raw string) string { u, _ := url.Parse(raw); return u.Path }

	body := httpbroker.EncodeBatch(topic, []*broker.Message{{ID: "m1", Body: []byte("genuine"), PublishedAt: time.Now()}})
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	valid := delivery{ts: now, nonce: freshNonce(), body: body}
	valid.sig = sign(c.secret, path(ep), valid.ts, valid.nonce, body)

	wrong := []byte("another secret, 32 bytes long...")
	tampered := bytes.Clone(body)
	tampered[len(tampered)-1] ^= 1 // "genuinf"
	stale := strconv.FormatInt(time.Now().Add(-10*time.Minute).UnixMilli(), 10)
	future := strconv.FormatInt(time.Now().Add(10*time.Minute).UnixMilli(), 10)
	malformed := []byte("HRB1 not a batch at all")
	huge := bytes.Repeat([]byte{'x'}, 200<<10)
	cases := []struct {
		name string
		to   string
		d    delivery
		code int
	}{
		{"unsigned", ep, delivery{body: body}, http.StatusUnauthorized},
		{"signature only", ep, delivery{sig: valid.sig, body: body}, http.StatusUnauthorized},
		{"wrong secret", ep, func() delivery {
			n := freshNonce()
			return delivery{ts: now, nonce: n, sig: sign(wrong, path(ep), now, n, body), body: body}
		}(), http.StatusUnauthorized},
		{"tampered body", ep, func() delivery {
			n := freshNonce()
			return delivery{ts: now, nonce: n, sig: sign(c.secret, path(ep), now, n, body), body: tampered}
		}(), http.StatusUnauthorized},
		{"tampered timestamp", ep, func() delivery {
			n := freshNonce()
			return delivery{ts: strconv.FormatInt(time.Now().UnixMilli()+1000, 10), nonce: n, sig: sign(c.secret, path(ep), now, n, body), body: body}
		}(), http.StatusUnauthorized},
		{"signed for another subscription", otherEP, func() delivery {
			n := freshNonce()
			return delivery{ts: now, nonce: n, sig: sign(c.secret, path(ep), now, n, body), body: body}
		}(), http.StatusUnauthorized},
		{"bad nonce", ep, delivery{ts: now, nonce: "short", sig: sign(c.secret, path(ep), now, "short", body), body: body}, http.StatusUnauthorized},
		{"garbage signature", ep, delivery{ts: now, nonce: freshNonce(), sig: "v1=zz", body: body}, http.StatusUnauthorized},
		{"stale timestamp", ep, func() delivery {
			n := freshNonce()
			return delivery{ts: stale, nonce: n, sig: sign(c.secret, path(ep), stale, n, body), body: body}
		}(), http.StatusForbidden},
		{"future timestamp", ep, func() delivery {
			n := freshNonce()
			return delivery{ts: future, nonce: n, sig: sign(c.secret, path(ep), future, n, body), body: body}
		}(), http.StatusForbidden},
		{"malformed batch", ep, func() delivery {
			n := freshNonce()
			return delivery{ts: now, nonce: n, sig: sign(c.secret, path(ep), now, n, malformed), body: malformed}
		}(), http.StatusBadRequest},
		{"oversized", ep, func() delivery {
			n := freshNonce()
			return delivery{ts: now, nonce: n, sig: sign(c.secret, path(ep), now, n, huge), body: huge}
		}(), http.StatusRequestEntityTooLarge},
		{"valid", ep, valid, http.StatusOK},
		{"replayed", ep, valid, http.StatusForbidden},
		{"replayed again", ep, valid, http.StatusForbidden},
	}
	for _, tc := range cases {
		code, msg := post(t, tc.to, tc.d)
		if code != tc.code {
			t.Errorf("%s: status %d (%q), want %d", tc.name, code, msg, tc.code)
		}
	}
	if n := handled.Load(); n != 1 {
		t.Fatalf("handler calls: %d, want 1 (the valid delivery only)", n)
	}
	if string(bodies[0]) != "genuine" {
		t.Fatalf("handled body %q", bodies[0])
	}
	s := b.Stats()
	want := httpbroker.Stats{RefusedUnsigned: 2, RefusedForged: 6, RefusedStale: 2, RefusedMalformed: 1, RefusedTooLarge: 1, RefusedReplayed: 2}
	got := httpbroker.Stats{RefusedUnsigned: s.RefusedUnsigned, RefusedForged: s.RefusedForged, RefusedStale: s.RefusedStale,
		RefusedMalformed: s.RefusedMalformed, RefusedTooLarge: s.RefusedTooLarge, RefusedReplayed: s.RefusedReplayed}
	if got != want {
		t.Errorf("refusal counters %+v, want %+v", got, want)
	}
	if s.Handled != 1 {
		t.Errorf("Handled = %d, want 1", s.Handled)
	}
}

// TestForgedResultsNotApplied: an endpoint that answers without the secret
// (a forged acknowledgement) does not make a message disappear: the
// publisher refuses the answer, counts it, keeps the message, and delivers
// it to a genuine member of the group.
func TestForgedResultsNotApplied(t *testing.T) {
	c := newCluster()
	pub := c.open(t)
	topic, group := "security.results", "workers"
	var fakeCalls atomic.Int32
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fakeCalls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		frame := httpbroker.AckFrame(0)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(frame)
		_, _ = w.Write([]byte{'C'})
		_, _ = w.Write(httpbroker.ResultsMAC([]byte("not the secret, but long enough"), r.Header.Get(httpbroker.HeaderNonce), frame))
	}))
	defer fake.Close()
	reg, _ := mem.New(mem.WithStore(c.store))
	defer reg.Close(context.Background())
	ctx := context.Background()
	err := reg.Register(ctx, registry.Instance{
		Service: httpbroker.ServiceName(topic), ID: "impostor", Addr: fake.URL + httpbroker.DeliveryPath + "impostor",
		Metadata: map[string]string{"topic": topic, "queue": group, "protocol": "1", "concurrency": "1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := &broker.Message{Body: []byte("must not vanish")}
	if err := pub.Publish(ctx, topic, m); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the impostor to be tried and its answer refused", func() bool { return pub.Stats().BadResults > 0 })
	if s := pub.Stats(); s.Delivered != 0 || s.Spooled != 1 {
		t.Fatalf("after a forged acknowledgement: delivered %d, spooled %d; want 0 and 1", s.Delivered, s.Spooled)
	}
	// The impostor leaves; a genuine member gets the message.
	if err := reg.Deregister(ctx, registry.Instance{Service: httpbroker.ServiceName(topic), ID: "impostor"}); err != nil {
		t.Fatal(err)
	}
	got := make(chan *broker.Message, 4)
	sub := c.open(t)
	if _, err := sub.Subscribe(ctx, topic, func(_ context.Context, m *broker.Message) error {
		got <- m.Clone()
		return nil
	}, broker.Queue(group)); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if d.ID != m.ID || string(d.Body) != "must not vanish" || d.Attempt < 2 {
			t.Fatalf("delivered %q %q attempt %d; want the message, as a later attempt", d.ID, d.Body, d.Attempt)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the message never reached the genuine member")
	}
	t.Logf("impostor called %d times, bad results %d", fakeCalls.Load(), pub.Stats().BadResults)
}

// waitUntil polls cond until it holds, failing the test after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}
