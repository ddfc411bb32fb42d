package natsdedupe_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/broker/nats/natsserver/natsservertest"
	"github.com/herald-dev/herald/middleware"
	"github.com/herald-dev/herald/middleware/dedupetest"
	"github.com/herald-dev/herald/middleware/natsdedupe"
)

// jetStream starts a NATS server in process and returns a JetStream on a
// connection of its own, both closed when the test ends.
func jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := natsserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return natsservertest.JetStream(t, srv.ClientURL())
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestConformance runs the store suite, every subtest on a connection of
// its own to one shared server and bucket, as replicas would.
func TestConformance(t *testing.T) {
	srv, err := natsserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	dedupetest.Run(t, func(t *testing.T) middleware.DedupeStore {
		s, err := natsdedupe.New(ctx(t), natsservertest.JetStream(t, srv.ClientURL()), natsdedupe.WithBucket("conformance"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestBucket(t *testing.T) {
	js := jetStream(t)
	s, err := natsdedupe.New(ctx(t), js)
	if err != nil {
		t.Fatal(err)
	}
	if s.Bucket() != natsdedupe.DefaultBucket {
		t.Fatalf("bucket %q, want %q", s.Bucket(), natsdedupe.DefaultBucket)
	}
	status := func(name string) *jetstream.KeyValueBucketStatus {
		t.Helper()
		kv, err := js.KeyValue(ctx(t), name)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		return st.(*jetstream.KeyValueBucketStatus)
	}
	st := status(natsdedupe.DefaultBucket)
	if st.TTL() != natsdedupe.DefaultRetention || st.History() != 1 || st.LimitMarkerTTL() != natsdedupe.MarkerTTL ||
		st.Config().Replicas != 1 || st.Config().Storage != jetstream.FileStorage {
		t.Fatalf("bucket config %+v", st.Config())
	}

	// A second replica with another retention: the bucket follows it, and
	// keeps the records.
	if r, err := s.Claim(ctx(t), "kept", "a", time.Minute); err != nil || r != middleware.Claimed {
		t.Fatalf("claim: %v %v", r, err)
	}
	if err := s.Complete(ctx(t), "kept", "a"); err != nil {
		t.Fatal(err)
	}
	s2, err := natsdedupe.New(ctx(t), js, natsdedupe.WithRetention(0))
	if err != nil {
		t.Fatal(err)
	}
	if st := status(natsdedupe.DefaultBucket); st.TTL() != 0 {
		t.Fatalf("max age %v after a replica asked for retention 0", st.TTL())
	}
	if r, err := s2.Claim(ctx(t), "kept", "b", time.Minute); err != nil || r != middleware.Done {
		t.Fatalf("record after the update: %v %v, want done", r, err)
	}

	// A bucket someone made without per-key TTLs cannot hold leases.
	if _, err := js.CreateKeyValue(ctx(t), jetstream.KeyValueConfig{Bucket: "plain"}); err != nil {
		t.Fatal(err)
	}
	if _, err := natsdedupe.New(ctx(t), js, natsdedupe.WithBucket("plain")); err == nil || !strings.Contains(err.Error(), "LimitMarkerTTL") {
		t.Fatalf("bucket without marker TTL: %v", err)
	}
}

// TestLeaseIsTheServers: a claim's key carries the lease as its TTL, rounded
// up to whole seconds, and a done record none.
func TestLeaseIsTheServers(t *testing.T) {
	js := jetStream(t)
	s, err := natsdedupe.New(ctx(t), js, natsdedupe.WithBucket("lease"))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx(t), "lease")
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx(t), "KV_lease")
	if err != nil {
		t.Fatal(err)
	}
	ttlOf := func(key string) string {
		t.Helper()
		m, err := stream.GetLastMsgForSubject(ctx(t), "$KV.lease."+key)
		if err != nil {
			t.Fatal(err)
		}
		return m.Header.Get("Nats-TTL")
	}
	if _, err := s.Claim(ctx(t), "k", "a", 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := ttlOf("k"); got != "2s" {
		t.Fatalf("claim TTL %q, want 2s", got)
	}
	if err := s.Complete(ctx(t), "k", "a"); err != nil {
		t.Fatal(err)
	}
	if got := ttlOf("k"); got != "" {
		t.Fatalf("done record TTL %q, want none", got)
	}
	e, err := kv.Get(ctx(t), "k")
	if err != nil || string(e.Value()) != "done:a" {
		t.Fatalf("value %q, %v", e.Value(), err)
	}
	if _, err := s.Claim(ctx(t), "x y", "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx(t), "=eCB5"); err != nil || string(e.Value()) != "claimed:a" {
		t.Fatalf("encoded key: %v", err)
	}
}

func TestForeignValue(t *testing.T) {
	js := jetStream(t)
	s, err := natsdedupe.New(ctx(t), js, natsdedupe.WithBucket("foreign"))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx(t), "foreign")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(ctx(t), "k", "something else"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx(t), "k", "a", time.Minute); err == nil || !strings.Contains(err.Error(), "not a dedupe record") {
		t.Fatalf("claim of a foreign value: %v", err)
	}
}

func TestInvalid(t *testing.T) {
	js := jetStream(t)
	for name, opt := range map[string]natsdedupe.Option{
		"empty bucket":     natsdedupe.WithBucket(""),
		"dotted bucket":    natsdedupe.WithBucket("a.b"),
		"short retention":  natsdedupe.WithRetention(time.Second),
		"negative":         natsdedupe.WithRetention(-time.Hour),
		"zero replicas":    natsdedupe.WithReplicas(0),
		"too many replica": natsdedupe.WithReplicas(6),
	} {
		if _, err := natsdedupe.New(ctx(t), js, opt); !errors.Is(err, broker.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := natsdedupe.New(ctx(t), nil); !errors.Is(err, broker.ErrInvalidOption) {
		t.Errorf("nil JetStream: %v", err)
	}
	// A cluster of one cannot keep three replicas: the server says so.
	if _, err := natsdedupe.New(ctx(t), js, natsdedupe.WithBucket("r3"), natsdedupe.WithReplicas(3)); err == nil {
		t.Error("3 replicas on a single server: no error")
	}
	s, err := natsdedupe.New(ctx(t), js, natsdedupe.WithBucket("limits"), natsdedupe.WithRetention(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"empty key": func() error { _, err := s.Claim(ctx(t), "", "a", time.Second); return err },
		"long key": func() error {
			_, err := s.Claim(ctx(t), strings.Repeat("k", natsdedupe.MaxKeyLen+1), "a", time.Second)
			return err
		},
		"empty owner":  func() error { _, err := s.Claim(ctx(t), "k", "", time.Second); return err },
		"lease":        func() error { _, err := s.Claim(ctx(t), "k", "a", time.Minute); return err },
		"complete key": func() error { return s.Complete(ctx(t), "", "a") },
		"release key":  func() error { return s.Release(ctx(t), "", "a") },
	} {
		if err := call(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
