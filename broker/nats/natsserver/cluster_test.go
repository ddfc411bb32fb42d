package natsserver_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker/nats/natsserver"
	"github.com/herald-dev/herald/broker/nats/natsserver/natsservertest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterReplicatesAndFailsOver forms a three-node cluster in process,
// creates a stream with three replicas, stops the node that leads it, and
// checks that another node leads it with the message still there, and that
// the node comes back on its addresses and catches up.
func TestClusterReplicatesAndFailsOver(t *testing.T) {
	nodes := natsservertest.StartCluster(t, 3)
	byName := map[string]*natsserver.Server{}
	for _, n := range nodes {
		byName[n.Name()] = n
		if !strings.HasPrefix(n.ClusterURL(), "nats-route://127.0.0.1:") {
			t.Errorf("%s ClusterURL %q", n.Name(), n.ClusterURL())
		}
		if !n.NATS().JetStreamIsClustered() {
			t.Errorf("%s: JetStream not clustered", n.Name())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js := natsservertest.JetStream(t, natsservertest.URL(nodes...), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	ci := s.CachedInfo().Cluster
	if ci == nil || byName[ci.Leader] == nil || len(ci.Replicas) != 2 {
		t.Fatalf("stream cluster info %+v, want a leader among n1..n3 and 2 replicas", ci)
	}
	leader := byName[ci.Leader]
	leaderClient, leaderCluster := leader.ClientURL(), leader.ClusterURL()
	leader.NATS().Shutdown() // the node goes away (Restart below brings it back)

	// Another node takes over, with the message.
	var rest []*natsserver.Server
	for _, n := range nodes {
		if n != leader {
			rest = append(rest, n)
		}
	}
	newLeader := waitLeader(ctx, t, rest, ci.Leader)
	if byName[newLeader] == nil || newLeader == ci.Leader {
		t.Fatalf("new leader %q (old %q)", newLeader, ci.Leader)
	}
	msg, err := getWhenBack(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != "kept" {
		t.Errorf("message after failover %q, want kept", msg.Data)
	}
	if _, err := js.Publish(ctx, "s", []byte("after")); err != nil {
		t.Errorf("publish after failover: %v", err)
	}

	// The node comes back on its addresses and catches up as a replica.
	if err := leader.Restart(); err != nil {
		t.Fatal(err)
	}
	if leader.ClientURL() != leaderClient || leader.ClusterURL() != leaderCluster {
		t.Errorf("restarted node on %s %s, want %s %s", leader.ClientURL(), leader.ClusterURL(), leaderClient, leaderCluster)
	}
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := js.Stream(rctx, "S")
		rcancel()
		if err == nil && caughtUp(s.CachedInfo().Cluster, ci.Leader) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not catch up as a replica of S: %v", ci.Leader, errors.Join(ctx.Err(), err))
		case <-time.After(50 * time.Millisecond): // polling the stream's info while the node catches up
		}
	}
}

// caughtUp reports whether name leads the stream or is a current replica.
func caughtUp(ci *jetstream.ClusterInfo, name string) bool {
	if ci == nil {
		return false
	}
	if ci.Leader == name {
		return true
	}
	for _, r := range ci.Replicas {
		if r.Name == name && r.Current && !r.Offline {
			return true
		}
	}
	return false
}

// waitLeader waits until the stream S has a leader other than old, asking
// the nodes in rest, and returns its name.
func waitLeader(ctx context.Context, t *testing.T, rest []*natsserver.Server, old string) string {
	t.Helper()
	js := natsservertest.JetStream(t, natsservertest.URL(rest...))
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := js.Stream(rctx, "S")
		cancel()
		if err == nil {
			if ci := s.CachedInfo().Cluster; ci != nil && ci.Leader != "" && ci.Leader != old {
				return ci.Leader
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no new leader of S: %v", errors.Join(ctx.Err(), err))
		case <-time.After(50 * time.Millisecond): // polling the stream's info during an election
		}
	}
}

func TestClusterOptionsValidated(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []natsserver.Option
	}{
		{"cluster without routes", []natsserver.Option{natsserver.WithServerName("a"), natsserver.WithCluster("c", "127.0.0.1", -1)}},
		{"cluster without a server name", []natsserver.Option{natsserver.WithCluster("c", "127.0.0.1", -1), natsserver.WithRoutes("nats-route://127.0.0.1:6222")}},
		{"routes without a cluster", []natsserver.Option{natsserver.WithRoutes("nats-route://127.0.0.1:6222")}},
		{"empty cluster name", []natsserver.Option{natsserver.WithCluster("", "127.0.0.1", -1)}},
		{"cluster name with a space", []natsserver.Option{natsserver.WithCluster("a b", "127.0.0.1", -1)}},
		{"empty cluster host", []natsserver.Option{natsserver.WithCluster("c", "", -1)}},
		{"cluster port 0", []natsserver.Option{natsserver.WithCluster("c", "127.0.0.1", 0)}},
		{"cluster port too high", []natsserver.Option{natsserver.WithCluster("c", "127.0.0.1", 70000)}},
		{"no routes", []natsserver.Option{natsserver.WithRoutes()}},
		{"route of another scheme", []natsserver.Option{natsserver.WithRoutes("http://127.0.0.1:6222")}},
		{"route without a port", []natsserver.Option{natsserver.WithRoutes("nats-route://127.0.0.1")}},
		{"route with a path", []natsserver.Option{natsserver.WithRoutes("nats-route://127.0.0.1:6222/x")}},
		{"unparsable route", []natsserver.Option{natsserver.WithRoutes("nats-route://a b:1")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := natsserver.Start(tc.opts...)
			if err == nil {
				srv.Shutdown()
				t.Fatal("Start succeeded")
			}
			if !errors.Is(err, natsserver.ErrInvalidOption) {
				t.Errorf("Start: %v, want ErrInvalidOption", err)
			}
		})
	}
	// A password in a route is not repeated in the error.
	_, err := natsserver.Start(natsserver.WithRoutes("nats-route://u:secret@127.0.0.1:6222/x"))
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v shows the route's password", err)
	}
}

// TestSingleServerReadyAtOnce: JetStreamReady returns at once for a server
// that is no cluster node, which has no ClusterURL.
func TestSingleServerReadyAtOnce(t *testing.T) {
	srv, err := natsserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.JetStreamReady(ctx); err != nil {
		t.Fatal(err)
	}
	if u := srv.ClusterURL(); u != "" {
		t.Errorf("ClusterURL of a single server %q, want empty", u)
	}
	srv.Shutdown()
	if err := srv.JetStreamReady(ctx); err == nil {
		t.Error("JetStreamReady after Shutdown returned nil")
	}
}
