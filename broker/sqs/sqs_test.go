package sqs_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/broker/brokertest"
	"github.com/herald-dev/herald/broker/sqs"
	"github.com/herald-dev/herald/internal/testproxy"
	"github.com/sivchari/kumo"
)

// kumo's services share one registry per process, so the tests share one
// in-process server; names are unique per test.
var (
	kumoOnce sync.Once
	kumoURL  string
)

// target returns the broker URL the tests use: HERALD_TEST_SQS_URL when
// set (an sqs:// URL, or the http(s) endpoint of an emulator), else an
// in-process kumo server.
func target(t testing.TB) string {
	t.Helper()
	if v := os.Getenv("HERALD_TEST_SQS_URL"); v != "" {
		if strings.HasPrefix(v, "sqs://") {
			return v
		}
		return "sqs://us-east-1?endpoint=" + url.QueryEscape(v)
	}
	return "sqs://us-east-1?endpoint=" + url.QueryEscape(kumoServer())
}

// kumoServer returns the URL of the in-process kumo server, started on
// first use.
func kumoServer() string {
	kumoOnce.Do(func() {
		srv := kumo.NewServer() // lives as long as the test binary
		kumoURL = srv.URL
	})
	return kumoURL
}

// open returns a new client, closed when the test ends.
func open(t testing.TB, query string) broker.Broker {
	t.Helper()
	return openURL(t, target(t), query)
}

// openURL returns a new client of the broker URL raw, closed when the test
// ends.
func openURL(t testing.TB, raw, query string) broker.Broker {
	t.Helper()
	sep := "&"
	if !strings.Contains(raw, "?") {
		sep = "?"
	}
	u, err := url.Parse(raw + sep + "wait=1s" + query)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := sqs.OpenURL(ctx, u)
	if err != nil {
		t.Fatalf("OpenURL: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}

func TestConformance(t *testing.T) {
	raw, restart := target(t), (func(*testing.T))(nil)
	if os.Getenv("HERALD_TEST_SQS_URL") == "" {
		// The clients reach kumo through a proxy: restarting it is an
		// outage (every connection dropped, none accepted for a moment)
		// after which kumo still has its state, as SQS, a managed service,
		// would.
		p := testproxy.Start(t, strings.TrimPrefix(kumoServer(), "http://"))
		raw, restart = "sqs://us-east-1?endpoint="+url.QueryEscape("http://"+p.Addr()), p.Restart
	}
	brokertest.Run(t, func(t *testing.T) broker.Broker { return openURL(t, raw, "") }, brokertest.Features{
		Restart:    restart,
		Persistent: true,
		// Standard queues do not keep order.
		OrderedPerPublisher: false,
		// Binary bodies travel in base64 within SNS's 256 KiB.
		MaxMessageSize: 180 << 10,
		// The visibility timeout is whole seconds.
		AckWait: time.Second,
		Timeout: 15 * time.Second,
	})
}

// collector gathers deliveries from a handler.
type collector struct {
	mu  sync.Mutex
	got []broker.Message
}

func (c *collector) add(m *broker.Message) {
	c.mu.Lock()
	c.got = append(c.got, *m.Clone())
	c.mu.Unlock()
}

// collect subscribes to topic with a handler that collects every message
// and acknowledges it, until the test ends.
func collect(t *testing.T, b broker.Broker, topic string) *collector {
	t.Helper()
	got := new(collector)
	s, err := b.Subscribe(context.Background(), topic, func(_ context.Context, m *broker.Message) error {
		got.add(m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Unsubscribe(context.Background()) })
	return got
}

func (c *collector) wait(t testing.TB, n int, timeout time.Duration) []broker.Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		got := append([]broker.Message(nil), c.got...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d messages, want %d within %v", len(got), n, timeout)
		}
		<-time.After(5 * time.Millisecond)
	}
}

func unique(s string) string {
	return s + "." + strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "")
}

// A delay of a second or more is the visibility timeout: the redelivery
// comes after it, with ApproximateReceiveCount as Attempt.
func TestVisibilityBackoff(t *testing.T) {
	b := open(t, "")
	ctx := context.Background()
	topic := unique("vis")
	var got collector
	s, err := b.Subscribe(ctx, topic, func(_ context.Context, m *broker.Message) error {
		got.add(m)
		if m.Attempt == 1 {
			return errors.New("later")
		}
		return nil
	}, broker.Queue("w"), broker.RetryBackoff(broker.Backoff{Initial: time.Second, Max: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe(ctx)
	start := time.Now()
	if err := b.Publish(ctx, topic, &broker.Message{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	ms := got.wait(t, 2, 10*time.Second)
	if ms[1].Attempt != 2 || time.Since(start) < time.Second {
		t.Errorf("redelivered with Attempt %d after %v, want 2 after at least 1s", ms[1].Attempt, time.Since(start))
	}
}

// Headers and bodies SQS cannot carry as text arrive byte for byte.
func TestEncoding(t *testing.T) {
	b := open(t, "")
	ctx := context.Background()
	topic := unique("enc")
	got := collect(t, b, topic)
	cases := []*broker.Message{
		{Body: []byte("plain text ✓")},
		{Body: []byte{0, 1, 0xff}},
		{Body: []byte("\uffff not allowed")},
		{Body: nil},
		{Header: broker.Header{"bad": "\xff", "ctl": "a\x00b", "ok": "v"}, Body: []byte("h")},
	}
	for _, m := range cases {
		if err := b.Publish(ctx, topic, m); err != nil {
			t.Fatal(err)
		}
	}
	ms := got.wait(t, len(cases), 10*time.Second)
	byID := map[string]broker.Message{}
	for _, m := range ms {
		byID[m.ID] = m
	}
	for _, want := range cases {
		d, ok := byID[want.ID]
		if !ok {
			t.Fatalf("message %s not delivered", want.ID)
		}
		if string(d.Body) != string(want.Body) || len(d.Header) != len(want.Header) {
			t.Errorf("got body %q header %v, want %q %v", d.Body, d.Header, want.Body, want.Header)
		}
		for k, v := range want.Header {
			if d.Header[k] != v {
				t.Errorf("header %q = %q, want %q", k, d.Header[k], v)
			}
		}
	}
}

// Bodies that read as a number or a boolean travel as they are: SNS's
// Query protocol carries every parameter as a string, so AWS takes "0" or
// "true" as a Message like any text. kumo does not: its Query-protocol
// adapter turns a form value that strconv.ParseInt or strconv.ParseBool
// accepts into a JSON number or boolean before decoding the request
// (internal/server/awsquery.go, parseFormValue, v0.33.1), and answers
// "InvalidParameter: Failed to parse request body". On kumo the test pins
// that gap (documented in the package doc and docs/backends.md), so that it
// fails once kumo is fixed; on another endpoint (HERALD_TEST_SQS_URL) it
// checks that the bodies arrive.
func TestBodiesThatReadAsNumbers(t *testing.T) {
	b := open(t, "")
	ctx := context.Background()
	topic := unique("numeric")
	got := collect(t, b, topic)
	onKumo := os.Getenv("HERALD_TEST_SQS_URL") == ""
	var sent []*broker.Message
	for _, body := range []string{"0", "-12", "+5", "007", "true", "F", "1.5", "null", " 0", "0x1"} {
		m := &broker.Message{Body: []byte(body)}
		err := b.Publish(ctx, topic, m)
		_, perr := strconv.ParseInt(body, 10, 64)
		_, berr := strconv.ParseBool(body)
		misread := perr == nil || berr == nil
		switch {
		case onKumo && misread:
			if err == nil || !strings.Contains(err.Error(), "Failed to parse request body") {
				t.Errorf("Publish(%q) on kumo: %v; kumo used to refuse it (see the test's comment): if it is fixed, remove the gap from the docs and this case", body, err)
			}
		case err != nil:
			t.Errorf("Publish(%q): %v", body, err)
		default:
			sent = append(sent, m)
		}
	}
	ms := got.wait(t, len(sent), 10*time.Second)
	bodies := map[string]string{}
	for _, m := range ms {
		bodies[m.ID] = string(m.Body)
	}
	for _, m := range sent {
		if bodies[m.ID] != string(m.Body) {
			t.Errorf("message %s: body %q, want %q", m.ID, bodies[m.ID], m.Body)
		}
	}
}

func TestOpenURLErrors(t *testing.T) {
	for _, bad := range []string{
		"sqs://",
		"sqs://r:1",
		"sqs://r?nope=1",
		"sqs://r?wait=1.5s",
		"sqs://r?endpoint=ftp://x",
		"sqs://r/path",
	} {
		u, _ := url.Parse(bad)
		if _, err := sqs.OpenURL(context.Background(), u); !errors.Is(err, broker.ErrBadURL) && !errors.Is(err, broker.ErrInvalidOption) {
			t.Errorf("OpenURL(%q) = %v, want ErrBadURL or ErrInvalidOption", bad, err)
		}
	}
}

func TestTooLarge(t *testing.T) {
	b := open(t, "")
	err := b.Publish(context.Background(), unique("big"), &broker.Message{Body: make([]byte, 300<<10)})
	if !errors.Is(err, broker.ErrTooLarge) {
		t.Fatalf("Publish of 300 KiB: %v, want ErrTooLarge", err)
	}
}

// With WithRedrive, a message that never reaches a decision (its handler
// outlives every Close) is moved by SQS's redrive policy to the queue's
// "-dlq" queue after MaxAttempts + extra receives.
func TestRedrive(t *testing.T) {
	topic := unique("redrive")
	ctx := context.Background()
	pub := open(t, "")
	release := make(chan struct{})
	defer close(release)
	stuck := func(ctx context.Context, _ *broker.Message) error {
		<-release
		return nil
	}
	started := make(chan struct{}, 10)
	closeAfterStart := func(c broker.Broker) {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("the handler did not start")
		}
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_ = c.Close(cctx)
	}
	first := open(t, "&redrive=1")
	if _, err := first.Subscribe(ctx, topic, func(ctx context.Context, m *broker.Message) error {
		started <- struct{}{}
		return stuck(ctx, m)
	}, broker.Queue("w"), broker.MaxAttempts(1)); err != nil {
		t.Fatal(err)
	}
	m := &broker.Message{Body: []byte("crashes its handler")}
	if err := pub.Publish(ctx, topic, m); err != nil {
		t.Fatal(err)
	}
	closeAfterStart(first) // receive 1
	second := open(t, "&redrive=1")
	if _, err := second.Subscribe(ctx, topic, func(ctx context.Context, m *broker.Message) error {
		started <- struct{}{}
		return stuck(ctx, m)
	}, broker.Queue("w"), broker.MaxAttempts(1)); err != nil {
		t.Fatal(err)
	}
	closeAfterStart(second) // receive 2 = MaxAttempts + 1: the next receive moves it

	var q *awssqs.Client
	if !broker.As(pub, &q) {
		t.Fatal("As(*sqs.Client) = false")
	}
	third := open(t, "&redrive=1")
	got := make(chan struct{}, 1)
	if _, err := third.Subscribe(ctx, topic, func(context.Context, *broker.Message) error {
		got <- struct{}{}
		return nil
	}, broker.Queue("w"), broker.MaxAttempts(1)); err != nil {
		t.Fatal(err)
	}
	lq, err := q.ListQueues(ctx, &awssqs.ListQueuesInput{QueueNamePrefix: aws.String("herald-" + strings.ReplaceAll(topic, ".", "_"))})
	if err != nil {
		t.Fatal(err)
	}
	var dlq string
	for _, u := range lq.QueueUrls {
		if strings.HasSuffix(u, "-dlq") {
			dlq = u[strings.LastIndex(u, "/")+1:]
		}
	}
	if dlq == "" {
		t.Fatalf("no -dlq queue among %v", lq.QueueUrls)
	}
	url, err := q.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(dlq)})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := q.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: url.QueueUrl, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 1 {
			if aws.ToString(out.Messages[0].Body) != string(m.Body) {
				t.Errorf("redriven body %q, want %q", aws.ToString(out.Messages[0].Body), m.Body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the message never reached the redrive queue")
		}
	}
	select {
	case <-got:
		t.Error("the third member got the message although it was redriven")
	default:
	}
}
