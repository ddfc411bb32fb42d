package email_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/herald-dev/herald/broker"
	natsbroker "github.com/herald-dev/herald/broker/nats"
	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/broker/redis"
	"github.com/herald-dev/herald/events"
	"github.com/herald-dev/herald/internal/dedupestore"
	"github.com/herald-dev/herald/internal/serverlock"
	"github.com/herald-dev/herald/internal/syncbuf"
	"github.com/herald-dev/herald/middleware"
	"github.com/herald-dev/herald/services/email"
	"github.com/herald-dev/herald/services/email/smtpsink"
)

// errAckLost is what replica A's broker makes of its first successful
// handling: the mail went out and its record was written, but the broker
// hears a failure, as when the acknowledgement is lost, and redelivers.
var errAckLost = errors.New("test: the acknowledgement was lost")

// errStopping is what replica A answers, without handling, to every
// delivery after that one: it is on its way down.
var errStopping = errors.New("test: replica is stopping")

// replica is a broker client of one email replica that records each
// handler run; with loseAck, its first successful run's result becomes
// errAckLost, and every later delivery fails with errStopping unhandled.
type replica struct {
	broker.Broker
	loseAck bool

	lost    atomic.Bool
	lostID  chan string // the ID whose acknowledgement was lost
	mu      sync.Mutex
	outcome []outcome
}

func (r *replica) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	return r.Broker.Subscribe(ctx, topic, func(ctx context.Context, m *broker.Message) error {
		var err error
		if r.lost.Load() {
			err = errStopping
		} else if err = h(ctx, m); err == nil && r.loseAck && r.lost.CompareAndSwap(false, true) {
			err = errAckLost
			defer func() { r.lostID <- m.ID }()
		}
		r.mu.Lock()
		r.outcome = append(r.outcome, outcome{m.ID, m.Attempt, err})
		r.mu.Unlock()
		return err
	}, opts...)
}

// acked returns the attempt of the run that acknowledged id, or 0.
func (r *replica) acked(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.outcome {
		if o.id == id && o.err == nil {
			return o.attempt
		}
	}
	return 0
}

// ackedAll reports whether every one of ids was acknowledged.
func (r *replica) ackedAll(ids []string) bool {
	for _, id := range ids {
		if r.acked(id) == 0 {
			return false
		}
	}
	return true
}

// runs returns the handler runs so far, for a failure's message.
func (r *replica) runs() []outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]outcome(nil), r.outcome...)
}

// storeFor opens the sent-mail records of one replica.
type storeFor func(t *testing.T, name string, b broker.Broker) middleware.DedupeStore

// sharedDefault is what `herald serve email` uses unless told otherwise:
// the records on the broker's engine, shared by every replica.
func sharedDefault(t *testing.T, _ string, b broker.Broker) middleware.DedupeStore {
	t.Helper()
	s, err := dedupestore.Open(context.Background(), dedupestore.Broker, b, dedupestore.Config{Name: email.Queue})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// sqlitePerReplica is the old default: a SQLite file in each replica's
// working directory.
func sqlitePerReplica(t *testing.T, name string, _ broker.Broker) middleware.DedupeStore {
	t.Helper()
	s, err := dedupestore.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), name, "email.db"), nil, dedupestore.Config{Name: email.Queue})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// redeliveryDelay is how long after A's failure its event is redelivered
// (A's backoff): A's Stop, which takes milliseconds, has long finished by
// then, so the redelivery cannot be handed to a pull request A left behind
// at the server (see the nats broker's Unsubscribe), and goes to B.
const redeliveryDelay = 2 * time.Second

// runReplicas runs the forced redelivery on two replicas, A and B, each
// with its own broker client from open and its own store from store, and
// one SMTP sink:
//
//  1. Only A runs. User 0 registers. A sends the mail and records it, but
//     its acknowledgement is lost (errAckLost), so the broker redelivers
//     the event, after redeliveryDelay; A would fail anything after that
//     unhandled.
//  2. A stops. Only now does B start: the redelivery can only go to B.
//     Users 1 and 2 register.
//  3. B handles the three events.
//
// It returns the number of mails each user got, once B acknowledged all
// three events, after checking that the redelivery of user 0's event did
// reach B, and the events' IDs.
func runReplicas(t *testing.T, open func(t *testing.T) broker.Broker, store storeFor) (perUser map[string]int, ids []string) {
	t.Helper()
	sink, err := smtpsink.Start("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close(context.Background()) })
	a := &replica{Broker: open(t), loseAck: true, lostID: make(chan string, 1)}
	b := &replica{Broker: open(t)}
	logsB := &syncbuf.Buffer{}
	newService := func(r *replica, name string, backoff time.Duration, logs *syncbuf.Buffer) *email.Service {
		svc, err := email.New(email.Config{
			Broker:      r,
			SMTPURL:     sink.URL(),
			Dedupe:      store(t, name, r.Broker),
			Concurrency: 1,
			MaxAttempts: 5,
			Backoff:     broker.Backoff{Initial: backoff, Max: backoff, Multiplier: 1},
			SendTimeout: 5 * time.Second,
			Logger:      slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	svcA := newService(a, "a", redeliveryDelay, &syncbuf.Buffer{})
	svcB := newService(b, "b", 10*time.Millisecond, logsB)
	stop := func(svc *email.Service) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}
	rcpt := map[string]string{} // event ID → address
	publish := func(via broker.Broker, i int) string {
		t.Helper()
		u := user(i)
		m, err := events.NewUserRegistered("herald/test", u)
		if err != nil {
			t.Fatal(err)
		}
		if err := via.Publish(context.Background(), events.TopicUserRegistered, m); err != nil {
			t.Fatal(err)
		}
		rcpt[m.ID] = u.Email
		ids = append(ids, m.ID)
		return m.ID
	}

	if err := svcA.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(svcA) })
	first := publish(a, 0)
	var lost string
	select {
	case lost = <-a.lostID:
	case <-time.After(20 * time.Second):
		t.Fatal("replica A never handled the event")
	}
	if lost != first || sink.Accepted() != 1 {
		t.Fatalf("A lost the ack of %s after %d mails, want %s (user 0) after 1", lost, sink.Accepted(), first)
	}
	stopped := time.Now()
	stop(svcA)
	if took := time.Since(stopped); took >= redeliveryDelay {
		t.Fatalf("A took %v to stop, longer than the redelivery delay %v: the redelivery may have gone to A", took, redeliveryDelay)
	}

	if err := svcB.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(svcB) })
	publish(b, 1)
	publish(b, 2)
	deadline := time.Now().Add(20 * time.Second)
	for !b.ackedAll(ids) {
		if time.Now().After(deadline) {
			t.Fatalf("B did not acknowledge the three events %v in 20s; runs of A: %v; runs of B: %v", ids, a.runs(), b.runs())
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	if attempt := b.acked(first); attempt < 2 {
		t.Fatalf("B acknowledged user 0's event on attempt %d; want a redelivery (attempt 2 or more)", attempt)
	}
	if a.acked(first) != 0 {
		t.Fatalf("A acknowledged user 0's event after all")
	}
	perUser = map[string]int{}
	for _, m := range mailsIn(t, sink) {
		perUser[m]++
	}
	t.Logf("mails per user %v; B acknowledged the redelivery of %s on attempt %d", perUser, first, b.acked(first))
	if perUser[rcpt[first]] == 1 && !strings.Contains(logsB.String(), `"msg":"duplicate dropped","msg_id":"`+first+`"`) {
		t.Errorf("B sent no second mail, yet did not log the duplicate it dropped:\n%s", logsB.String())
	}
	return perUser, ids
}

// mailsIn returns the recipient of each mail the sink kept.
func mailsIn(t *testing.T, sink *smtpsink.Sink) []string {
	t.Helper()
	e := &env{t: t, sink: sink}
	var rcpts []string
	for _, m := range e.mails() {
		rcpts = append(rcpts, m.Rcpt...)
	}
	return rcpts
}

// wantOnePerUser fails unless each of the three users got exactly one mail.
func wantOnePerUser(t *testing.T, perUser map[string]int) {
	t.Helper()
	for i := range 3 {
		if n := perUser[user(i).Email]; n != 1 {
			t.Errorf("%s got %d mails, want 1 (mails per user: %v)", user(i).Email, n, perUser)
		}
	}
}

// TestReplicasShareSentMailRecords: two email replicas on one NATS
// JetStream server, each with its own connection, and the default store:
// an event whose acknowledgement was lost after its mail was sent is
// redelivered to the other replica, which sends nothing.
func TestReplicasShareSentMailRecords(t *testing.T) {
	srv, err := natsserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	openNATS := func(t *testing.T) broker.Broker {
		t.Helper()
		b, err := natsbroker.New(context.Background(), srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close(context.Background()) })
		return b
	}
	t.Run("shared default", func(t *testing.T) {
		perUser, _ := runReplicas(t, openNATS, sharedDefault)
		wantOnePerUser(t, perUser)
	})
	// The control: with a SQLite file per replica, the old default, the
	// same run sends user 0 a second mail. It proves that the redelivery
	// really reaches a replica that handles it.
	t.Run("sqlite per replica sends twice", func(t *testing.T) {
		perUser, _ := runReplicas(t, openNATS, sqlitePerReplica)
		if n := perUser[user(0).Email]; n != 2 {
			t.Fatalf("user 0 got %d mails with a SQLite file per replica, want 2: the redelivery did not reach B's own records", n)
		}
	})
}

// TestReplicasShareSentMailRecordsOnRedis is the same on Redis Streams,
// whose default store is Redis keys.
func TestReplicasShareSentMailRecordsOnRedis(t *testing.T) {
	url := os.Getenv("HERALD_TEST_REDIS_URL")
	if url == "" {
		t.Skip("HERALD_TEST_REDIS_URL is not set: this test needs a Redis server (scripts/servers/start-redis.sh starts one)")
	}
	serverlock.Use(t, "redis")          // broker/redis's tests restart it
	prefix := "t" + broker.NewID()[24:] // streams of this test only
	var client *goredis.Client
	openRedis := func(t *testing.T) broker.Broker {
		t.Helper()
		b, err := redis.New(context.Background(), url, redis.WithPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close(context.Background()) })
		if client == nil && !broker.As(b, &client) {
			t.Fatal("the Redis broker does not expose its client")
		}
		return b
	}
	perUser, ids := runReplicas(t, openRedis, sharedDefault)
	wantOnePerUser(t, perUser)
	// Leave nothing on the shared server: the test's streams, and the
	// records of its events.
	ctx := context.Background()
	keys := client.Keys(ctx, prefix+":*").Val()
	for _, id := range ids {
		keys = append(keys, "herald:dedupe:"+email.Queue+":"+id)
	}
	if err := client.Del(ctx, keys...).Err(); err != nil {
		t.Logf("cleaning up: %v", err)
	}
}
