package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-dev/herald/broker/nats/natsserver/natsservertest"
	"github.com/herald-dev/herald/services/email/smtpsink"
)

// clusterReady is what `herald serve broker` prints once its node is in
// contact with the JetStream meta leader.
var clusterReady = regexp.MustCompile(`JetStream cluster ready`)

// registeredStream is the stream of the user.registered topic (the NATS
// broker's default prefix).
const registeredStream = "herald~user~registered"

// clusterSystem is the system of [startSystem] on a JetStream cluster of
// three `herald serve broker` processes, the services' URLs listing the
// three with replicas=3.
type clusterSystem struct {
	*system
	nodes   map[string]*proc // by server name: n1, n2, n3
	servers string           // nats://a,b,c: the nodes' client addresses
}

func startClusterSystem(t *testing.T) *clusterSystem {
	t.Helper()
	s := &system{t: t, dir: t.TempDir()}
	c := &clusterSystem{system: s, nodes: map[string]*proc{}}
	sink, err := smtpsink.Start("127.0.0.1:0", filepath.Join(s.dir, "mailbox"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close(context.Background()) })
	s.sink = sink

	// The nodes' addresses are picked first: each node's --routes lists
	// them all, and a killed node comes back on its own.
	var clients, routes []string
	for range 3 {
		clients = append(clients, freeAddr(t))
		routes = append(routes, "nats-route://"+freeAddr(t))
	}
	for i, client := range clients {
		name := fmt.Sprintf("n%d", i+1)
		c.nodes[name], _ = startProc(t, name, brokerReady, "serve", "broker",
			"--server-name", name, "--listen", client, "--data-dir", filepath.Join(s.dir, name),
			"--cluster-listen", strings.TrimPrefix(routes[i], "nats-route://"), "--routes", strings.Join(routes, ","),
			"--log-level", "warn")
	}
	for _, p := range c.nodes {
		waitOutput(t, p, clusterReady, 60*time.Second)
	}
	c.servers = "nats://" + strings.Join(clients, ",")
	s.brokerURL = c.servers // what published() reads the stream through
	serviceURL := c.servers + "?replicas=3"
	s.emailBrokerURL = serviceURL
	s.user, s.userAddr = startProc(t, "user", userReady, "serve", "user",
		"--listen", freeAddr(t), "--database", "sqlite://"+filepath.Join(s.dir, "users.db"),
		"--broker", serviceURL, "--registry", serviceURL, "--bcrypt-cost", "4", "--create-rate", "0", "--log-level", "warn")
	s.email, _ = startProc(t, "email", emailReady, s.emailArgs()...)
	return c
}

// waitOutput waits until p's output matches re.
func waitOutput(t *testing.T, p *proc, re *regexp.Regexp, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for !re.MatchString(p.out.String()) {
		select {
		case <-p.done:
			t.Fatalf("%s ended:\n%s", p.name, p.out.String())
		case <-deadline:
			t.Fatalf("%s: no %q after %v:\n%s", p.name, re, within, lastLines(p.out.String(), 20))
		case <-time.After(20 * time.Millisecond): // polling a process's output
		}
	}
}

// jetStream connects to the cluster (reconnecting to whichever node is up)
// for the test's own questions about streams.
func (c *clusterSystem) jetStream() jetstream.JetStream {
	c.t.Helper()
	return natsservertest.JetStream(c.t, c.servers, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
}

// streamCluster waits until the stream's cluster info satisfies ok and
// returns it.
func (c *clusterSystem) streamCluster(js jetstream.JetStream, within time.Duration, ok func(*jetstream.ClusterInfo) bool) *jetstream.ClusterInfo {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var last error
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := js.Stream(rctx, registeredStream)
		rcancel()
		if err == nil {
			if ci := s.CachedInfo().Cluster; ci != nil && ok(ci) {
				return ci
			}
			last = fmt.Errorf("cluster info %+v", s.CachedInfo().Cluster)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("stream %s: condition not met after %v: %v", registeredStream, within, errors.Join(ctx.Err(), last))
		case <-time.After(50 * time.Millisecond): // polling the stream's cluster info
		}
	}
}

// healthy reports whether the stream has a leader and two current replicas.
func healthy(ci *jetstream.ClusterInfo) bool {
	if ci.Leader == "" || len(ci.Replicas) != 2 {
		return false
	}
	for _, r := range ci.Replicas {
		if !r.Current || r.Offline {
			return false
		}
	}
	return true
}

// consumerLeader is the node leading the email service's consumer, for the
// log ("" when unknown).
func consumerLeader(js jetstream.JetStream) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, registeredStream)
	if err != nil {
		return ""
	}
	for info := range s.ListConsumers(ctx).Info() {
		if info.Cluster != nil {
			return info.Name + "@" + info.Cluster.Leader
		}
	}
	return ""
}

// TestNATSClusterLeaderKilled runs the registrations on a JetStream
// cluster of three `herald serve broker` processes, the user.registered
// stream, the email service's consumer and the registry's bucket with three
// replicas, and SIGKILLs the node leading the stream once a third of the
// users are registered. The second third registers while the other nodes
// elect a new leader, the last third once it is elected, while the killed
// node starts again and catches up. Every user must get exactly one mail,
// and the stream must have changed leader.
func TestNATSClusterLeaderKilled(t *testing.T) {
	c := startClusterSystem(t)
	js := c.jetStream()
	ci := c.streamCluster(js, 30*time.Second, healthy)
	t.Logf("stream %s: leader %s, replicas %s, %s; consumer %s", registeredStream, ci.Leader, ci.Replicas[0].Name, ci.Replicas[1].Name, consumerLeader(js))

	n := registrations()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	noProgress := func(int) {}
	registered := c.registerFrom(ctx, 0, n/3, noProgress)
	// The leader of the moment: it may have moved since the first look.
	ci = c.streamCluster(js, 30*time.Second, func(ci *jetstream.ClusterInfo) bool { return ci.Leader != "" })
	leader, consumer := ci.Leader, consumerLeader(js)
	node := c.nodes[leader]
	if node == nil {
		t.Fatalf("stream leader %q is none of the nodes", leader)
	}
	killed := time.Now()
	node.kill()
	t.Logf("stream leader %s SIGKILLed after %d of %d registrations (consumer %s)", leader, registered, n, consumer)

	// Registrations go on while the other nodes elect a leader.
	registered += c.registerFrom(ctx, n/3, n/3, noProgress)
	t.Logf("%d registrations done %v after the kill", registered, time.Since(killed).Round(time.Millisecond))
	ci = c.streamCluster(js, 60*time.Second, func(ci *jetstream.ClusterInfo) bool { return ci.Leader != "" && ci.Leader != leader })
	elected := time.Since(killed)
	t.Logf("new stream leader %s %v after the kill", ci.Leader, elected.Round(time.Millisecond))

	// And under the new leader, while the killed node comes back.
	rest := make(chan int, 1)
	go func() { rest <- c.registerFrom(ctx, 2*(n/3), n-2*(n/3), noProgress) }()
	node.start(brokerReady) // the same ports and data
	waitOutput(t, node, clusterReady, 60*time.Second)
	registered += <-rest
	if registered != n {
		t.Errorf("%d of %d registrations done", registered, n)
	}
	t.Logf("all %d registered %v after the kill; node %s back", registered, time.Since(killed).Round(time.Millisecond), leader)
	c.waitMails(registered, 3*time.Minute)
	t.Logf("every user has a mail %v after the kill", time.Since(killed).Round(time.Millisecond))
	// The node that came back holds a current copy again.
	ci = c.streamCluster(js, 60*time.Second, healthy)
	t.Logf("at the end: leader %s, replicas %s, %s (all current); the leader changed %v after the kill",
		ci.Leader, ci.Replicas[0].Name, ci.Replicas[1].Name, elected.Round(time.Millisecond))
	c.report("nats-cluster-leader-kill", registered)
}
