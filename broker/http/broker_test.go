package httpbroker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	httpbroker "github.com/herald-dev/herald/broker/http"
	"github.com/herald-dev/herald/registry"
	"github.com/herald-dev/herald/registry/mem"
)

// collector records deliveries for the tests of this file.
type collector struct{ ch chan *broker.Message }

func newCollector() *collector { return &collector{ch: make(chan *broker.Message, 1024)} }

func (c *collector) handle(_ context.Context, m *broker.Message) error {
	c.ch <- m.Clone()
	return nil
}

// want waits for n deliveries and returns them.
func (c *collector) want(t *testing.T, n int) []*broker.Message {
	t.Helper()
	var out []*broker.Message
	for len(out) < n {
		select {
		case m := <-c.ch:
			out = append(out, m)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d deliveries after 10s", len(out), n)
		}
	}
	return out
}

// none fails if anything is delivered within d.
func (c *collector) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-c.ch:
		t.Fatalf("unexpected delivery %s %q", m.ID, m.Body)
	case <-time.After(d):
	}
}

func publish(t *testing.T, b broker.Broker, topic string, bodies ...string) []string {
	t.Helper()
	ids := make([]string, len(bodies))
	for i, s := range bodies {
		m := &broker.Message{Body: []byte(s)}
		if err := b.Publish(context.Background(), topic, m); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		ids[i] = m.ID
	}
	return ids
}

// TestPublisherRestartKeepsSpool: messages spooled for a queue group with
// no live member survive the publisher's Close and are delivered by the next
// broker opened on the same spool directory, once a member joins.
func TestPublisherRestartKeepsSpool(t *testing.T) {
	c := newCluster()
	dir := t.TempDir()
	ctx := context.Background()
	topic, group := "restart.spool", "workers"

	pub := c.open(t, httpbroker.WithSpool(dir))
	first := c.open(t)
	col := newCollector()
	sub, err := first.Subscribe(ctx, topic, col.handle, broker.Queue(group))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, pub, topic, "while live")
	col.want(t, 1)
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	ids := publish(t, pub, topic, "offline 1", "offline 2", "offline 3")
	if s := pub.Stats(); s.Spooled != 3 {
		t.Fatalf("spooled %d, want 3", s.Spooled)
	}
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}

	again := c.open(t, httpbroker.WithSpool(dir))
	if s := again.Stats(); s.Spooled != 3 {
		t.Fatalf("reopened spool holds %d, want 3", s.Spooled)
	}
	second := c.open(t)
	if _, err := second.Subscribe(ctx, topic, col.handle, broker.Queue(group)); err != nil {
		t.Fatal(err)
	}
	got := col.want(t, 3)
	for i, m := range got {
		if m.ID != ids[i] || m.Attempt != 1 {
			t.Errorf("delivery %d: %s attempt %d, want %s attempt 1 (in publish order)", i, m.ID, m.Attempt, ids[i])
		}
	}
	col.none(t, 200*time.Millisecond)
	waitUntil(t, 5*time.Second, "the spool to empty", func() bool { return again.Stats().Spooled == 0 })
}

// TestSpoolInUse: two brokers cannot share a spool directory.
func TestSpoolInUse(t *testing.T) {
	c := newCluster()
	dir := t.TempDir()
	c.open(t, httpbroker.WithSpool(dir))
	reg, _ := mem.New(mem.WithStore(c.store))
	defer reg.Close(context.Background())
	_, err := httpbroker.New(reg, httpbroker.WithSpool(dir), httpbroker.WithSecret(c.secret))
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second broker on one spool: %v, want an error saying it is in use", err)
	}
}

// TestForgetGroup: a forgotten group's spooled messages are deleted, and
// its record leaves the registry: a publisher that never knew the group does
// not learn it any more.
func TestForgetGroup(t *testing.T) {
	c := newCluster()
	ctx := context.Background()
	topic, group := "forget.group", "gone"
	pub, member := c.open(t), c.open(t)
	sub, err := member.Subscribe(ctx, topic, func(context.Context, *broker.Message) error { return nil }, broker.Queue(group))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, pub, topic, "one")
	waitUntil(t, 5*time.Second, "the first message to be delivered", func() bool { return pub.Stats().Delivered == 1 })
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	publish(t, pub, topic, "two", "three")
	if s := pub.Stats(); s.Spooled != 2 {
		t.Fatalf("spooled %d, want 2", s.Spooled)
	}
	if err := pub.ForgetGroup(ctx, topic, group); err != nil {
		t.Fatal(err)
	}
	if s := pub.Stats(); s.Spooled != 0 || pub.KnowsGroup(topic, group) {
		t.Fatalf("after ForgetGroup: spooled %d, knows the group %v", s.Spooled, pub.KnowsGroup(topic, group))
	}
	publish(t, pub, topic, "four") // no target now: dropped
	if s := pub.Stats(); s.Spooled != 0 {
		t.Fatalf("spooled %d after publishing to a forgotten group", s.Spooled)
	}
	late := c.open(t)
	publish(t, late, topic, "five")
	if s := late.Stats(); s.Spooled != 0 || late.KnowsGroup(topic, group) {
		t.Fatalf("a new publisher after ForgetGroup: spooled %d, knows the group %v", s.Spooled, late.KnowsGroup(topic, group))
	}
	if err := pub.ForgetGroup(ctx, "bad topic", group); !errors.Is(err, broker.ErrBadTopic) {
		t.Fatalf("ForgetGroup with a bad topic: %v", err)
	}
}

// TestHeldDeadLetters: a dead letter published while its topic has no
// subscriber is held, and handed to the first queue group that joins it.
func TestHeldDeadLetters(t *testing.T) {
	c := newCluster()
	ctx := context.Background()
	topic := "held.dlq"
	pub, worker := c.open(t), c.open(t)
	if _, err := worker.Subscribe(ctx, topic, func(context.Context, *broker.Message) error {
		return broker.Permanent(errors.New("cannot handle"))
	}); err != nil {
		t.Fatal(err)
	}
	ids := publish(t, pub, topic, "poison")
	waitUntil(t, 5*time.Second, "the dead letter", func() bool { return worker.Stats().DeadLettered == 1 })
	col := newCollector()
	if _, err := c.open(t).Subscribe(ctx, broker.DefaultDeadLetterTopic(topic), col.handle, broker.Queue("dlq")); err != nil {
		t.Fatal(err)
	}
	d := col.want(t, 1)[0]
	if d.ID != ids[0] || string(d.Body) != "poison" || d.Header.Get(broker.HeaderDeadLetterTopic) != topic {
		t.Fatalf("dead letter %s %q %v", d.ID, d.Body, d.Header)
	}
}

// TestBroadcastDroppedWhenGone: a broadcast subscriber that leaves takes
// its undelivered messages with it; they are not kept in the spool.
func TestBroadcastDroppedWhenGone(t *testing.T) {
	c := newCluster()
	ctx := context.Background()
	topic := "broadcast.gone"
	pub := c.open(t)
	blocked := make(chan struct{})
	defer close(blocked)
	sub, err := c.open(t).Subscribe(ctx, topic, func(ctx context.Context, _ *broker.Message) error {
		select {
		case <-blocked:
		case <-ctx.Done():
		}
		return errors.New("never done")
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, pub, topic, "1", "2", "3")
	waitUntil(t, 5*time.Second, "the messages to be spooled", func() bool { return pub.Stats().Spooled == 3 })
	uctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_ = sub.Unsubscribe(uctx) // abandons the stuck handler
	waitUntil(t, 5*time.Second, "the gone subscriber's messages to be dropped", func() bool { return pub.Stats().Spooled == 0 })
}

func openURLWith(c *cluster) broker.OpenFunc {
	return httpbroker.OpenURLWith(func(_ context.Context, raw string) (registry.Registry, error) {
		if raw != "mem://" {
			return nil, errors.New("only mem:// here, got " + raw)
		}
		return mem.New(mem.WithStore(c.store))
	})
}

func TestOpenURL(t *testing.T) {
	c := newCluster()
	c.secret = []byte("a printable secret of 32 bytes..")
	open := openURLWith(c)
	ctx := context.Background()
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(string(c.secret)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pubURL := "http://?spool=" + url.QueryEscape(t.TempDir()) + "&secret_file=" + url.QueryEscape(secretFile)
	t.Setenv(httpbroker.EnvSecret, string(c.secret))
	subURL := "http://?registry=mem://&listen=127.0.0.1:0&ttl=5s&spool=" + url.QueryEscape(t.TempDir())
	var bs []broker.Broker
	for _, raw := range []string{pubURL, subURL} {
		u, _ := url.Parse(raw)
		b, err := open(ctx, u)
		if err != nil {
			t.Fatalf("open %q: %v", raw, err)
		}
		defer b.Close(ctx)
		bs = append(bs, b)
	}
	col := newCollector()
	if _, err := bs[1].Subscribe(ctx, "url.topic", col.handle); err != nil {
		t.Fatal(err)
	}
	publish(t, bs[0], "url.topic", "through URLs")
	if got := col.want(t, 1); string(got[0].Body) != "through URLs" {
		t.Fatalf("delivered %q", got[0].Body)
	}
}

func TestOpenURLErrors(t *testing.T) {
	c := newCluster()
	open := openURLWith(c)
	t.Setenv(httpbroker.EnvSecret, "")
	spool := url.QueryEscape(t.TempDir())
	secret := "0123456789abcdef-secret"
	for _, tc := range []struct{ raw, want string }{
		{"http://host:1?spool=" + spool + "&secret=" + secret, "no host"},
		{"http:///path?spool=" + spool + "&secret=" + secret, "no host"},
		{"http://?spool=" + spool + "&secret=" + secret + "&bogus=1", "bogus"},
		{"http://?spool=" + spool + "&secret=" + secret + "&spool=" + spool, "2 times"},
		{"http://?spool=" + spool, "no secret"},
		{"http://?secret=" + secret, "no spool"},
		{"http://?spool=" + spool + "&secret=short", "too short"},
		{"http://?spool=" + spool + "&secret=" + secret + "&ttl=soon", "ttl"},
		{"http://?spool=" + spool + "&secret=" + secret + "&registry=etcd://x", "registry"},
		{"https://?spool=" + spool + "&secret=" + secret, "cert"},
		{"http://?spool=" + spool + "&secret=" + secret + "&cert=a.pem&key=b.pem", "https"},
		{"ftp://?spool=" + spool + "&secret=" + secret, "scheme"},
	} {
		u, err := url.Parse(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		b, err := open(context.Background(), u)
		if err == nil {
			_ = b.Close(context.Background())
			t.Errorf("open %q: no error", tc.raw)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("open %q: %v, want it to mention %q", tc.raw, err, tc.want)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("open %q: the error shows the secret: %v", tc.raw, err)
		}
	}
}

func TestRedact(t *testing.T) {
	u, _ := url.Parse("http://?secret=hunter2hunter2hunter2&registry=" + url.QueryEscape("etcd://user:pw@h:2379") + "&spool=/x")
	s := httpbroker.Redact(u)
	if strings.Contains(s, "hunter2") || strings.Contains(s, "pw@") || !strings.Contains(s, "spool") {
		t.Fatalf("Redact: %s", s)
	}
}

// TestTLS: an https subscriber endpoint, reached by a publisher that trusts
// its CA.
func TestTLS(t *testing.T) {
	certPEM, keyPEM := selfSigned(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCluster()
	c.secret = []byte("a printable secret of 32 bytes..")
	open := openURLWith(c)
	t.Setenv(httpbroker.EnvSecret, string(c.secret))
	ctx := context.Background()
	subU, _ := url.Parse("https://?spool=" + url.QueryEscape(t.TempDir()) + "&cert=" + url.QueryEscape(certFile) + "&key=" + url.QueryEscape(keyFile))
	pubU, _ := url.Parse("http://?spool=" + url.QueryEscape(t.TempDir()) + "&ca=" + url.QueryEscape(certFile))
	sub, err := open(ctx, subU)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)
	pub, err := open(ctx, pubU)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(ctx)
	col := newCollector()
	if _, err := sub.Subscribe(ctx, "tls.topic", col.handle); err != nil {
		t.Fatal(err)
	}
	reg, _ := mem.New(mem.WithStore(c.store))
	defer reg.Close(ctx)
	insts, err := reg.Lookup(ctx, httpbroker.ServiceName("tls.topic"))
	if err != nil || !strings.HasPrefix(insts[0].Addr, "https://") {
		t.Fatalf("registered %v, %v; want an https address", insts, err)
	}
	publish(t, pub, "tls.topic", "over TLS")
	if got := col.want(t, 1); string(got[0].Body) != "over TLS" {
		t.Fatalf("delivered %q", got[0].Body)
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "herald test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestAdvertiseRequiredOnAllInterfaces: listening on every interface needs
// an address publishers can reach.
func TestAdvertiseRequiredOnAllInterfaces(t *testing.T) {
	c := newCluster()
	b := c.open(t, httpbroker.WithListen("0.0.0.0:0"))
	_, err := b.Subscribe(context.Background(), "adv.topic", func(context.Context, *broker.Message) error { return nil })
	if !errors.Is(err, broker.ErrInvalidOption) || !strings.Contains(err.Error(), "advertise") {
		t.Fatalf("Subscribe on 0.0.0.0 without advertise: %v", err)
	}
	b2 := c.open(t, httpbroker.WithListen("0.0.0.0:0"), httpbroker.WithAdvertise("127.0.0.1:0"))
	col := newCollector()
	if _, err := b2.Subscribe(context.Background(), "adv.topic", col.handle); err != nil {
		t.Fatal(err)
	}
	publish(t, c.open(t), "adv.topic", "advertised")
	col.want(t, 1)
}

func TestNewErrors(t *testing.T) {
	reg, _ := mem.New()
	defer reg.Close(context.Background())
	secret := httpbroker.WithSecret([]byte("0123456789abcdef"))
	for name, opts := range map[string][]httpbroker.Option{
		"no spool":         {secret},
		"no secret":        {httpbroker.WithSpool(t.TempDir())},
		"short secret":     {httpbroker.WithSpool(t.TempDir()), httpbroker.WithSecret([]byte("short"))},
		"short old secret": {httpbroker.WithSpool(t.TempDir()), httpbroker.WithSecret([]byte("0123456789abcdef"), []byte("x"))},
		"bad listen":       {httpbroker.WithSpool(t.TempDir()), secret, httpbroker.WithListen("nope")},
		"bad ttl":          {httpbroker.WithSpool(t.TempDir()), secret, httpbroker.WithRegisterTTL(time.Millisecond)},
		"bad window":       {httpbroker.WithSpool(t.TempDir()), secret, httpbroker.WithReplayWindow(0)},
		"bad max":          {httpbroker.WithSpool(t.TempDir()), secret, httpbroker.WithMaxMessageSize(1)},
		"bad batch":        {httpbroker.WithSpool(t.TempDir()), secret, httpbroker.WithBatch(0, 1)},
		"nil logger":       {httpbroker.WithSpool(t.TempDir()), secret, httpbroker.WithLogger(nil)},
		"nil tls":          {httpbroker.WithSpool(t.TempDir()), secret, httpbroker.WithTLS(nil)},
	} {
		if b, err := httpbroker.New(reg, opts...); !errors.Is(err, broker.ErrInvalidOption) {
			if b != nil {
				_ = b.Close(context.Background())
			}
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := httpbroker.New(nil, secret, httpbroker.WithSpool(t.TempDir())); !errors.Is(err, broker.ErrInvalidOption) {
		t.Errorf("nil registry: %v", err)
	}
}

// TestTooLarge: Publish refuses a message over the size limit.
func TestTooLarge(t *testing.T) {
	b := newCluster().open(t, httpbroker.WithMaxMessageSize(4096))
	err := b.Publish(context.Background(), "big.topic", &broker.Message{Body: make([]byte, 5000)})
	if !errors.Is(err, broker.ErrTooLarge) {
		t.Fatalf("Publish of 5000 bytes with a 4096 limit: %v", err)
	}
}

// TestLongTopicHashed: a topic whose service name would exceed the
// registry's limit registers under a hashed name.
func TestLongTopicHashed(t *testing.T) {
	long := strings.Repeat("t", broker.MaxTopicLength)
	name := httpbroker.ServiceName(long)
	if len(name) > 128 || registry.ValidateName(name) != nil {
		t.Fatalf("ServiceName of a long topic: %q", name)
	}
	if httpbroker.ServiceName("short.topic") != "herald.broker.short.topic" {
		t.Fatalf("ServiceName(short.topic) = %q", httpbroker.ServiceName("short.topic"))
	}
}

// flakyRegistry fails every call while down is set, as an unreachable
// registry server would.
type flakyRegistry struct {
	registry.Registry
	down atomic.Bool
}

var errUnreachable = errors.New("registry unreachable")

func (f *flakyRegistry) Lookup(ctx context.Context, service string) ([]registry.Instance, error) {
	if f.down.Load() {
		return nil, errUnreachable
	}
	return f.Registry.Lookup(ctx, service)
}

func (f *flakyRegistry) Watch(ctx context.Context, service string) (<-chan registry.Event, error) {
	if f.down.Load() {
		return nil, errUnreachable
	}
	return f.Registry.Watch(ctx, service)
}

// TestRegistryDownAtFirstPublish: a message published while the registry
// cannot be read (so the topic's groups cannot be known) is not dropped: it
// is held, and delivered to the topic's group once the registry answers.
func TestRegistryDownAtFirstPublish(t *testing.T) {
	c := newCluster()
	ctx := context.Background()
	inner, _ := mem.New(mem.WithStore(c.store))
	reg := &flakyRegistry{Registry: inner}
	reg.down.Store(true)
	pub, err := httpbroker.New(reg, httpbroker.WithSpool(t.TempDir()), httpbroker.WithSecret(c.secret), httpbroker.WithCloseRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(ctx)
	topic := "blind.topic"
	ids := publish(t, pub, topic, "published blind")
	if s := pub.Stats(); s.Spooled != 1 {
		t.Fatalf("spooled %d while the registry is down, want 1 (held)", s.Spooled)
	}
	col := newCollector()
	if _, err := c.open(t).Subscribe(ctx, topic, col.handle, broker.Queue("late")); err != nil {
		t.Fatal(err)
	}
	reg.down.Store(false)
	if got := col.want(t, 1); got[0].ID != ids[0] {
		t.Fatalf("delivered %s, want %s", got[0].ID, ids[0])
	}
}
