// Package natsservertest starts NATS clusters with JetStream inside a test
// process, for the tests of the packages that run on NATS (the broker, the
// registry) and of natsserver itself.
package natsservertest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-dev/herald/broker/nats/natsserver"
)

// StartCluster starts n cluster nodes named n1, n2, … on loopback, with
// their data in test directories, and waits until their JetStream has a
// meta leader. The nodes are shut down at the end of the test. opts are
// added to each node's.
//
// nats-server runs clustered JetStream only on a node with configured
// routes, so the first node needs the address of another before either
// runs: n2's cluster port is picked in advance (a port free at that
// moment); every other node takes a random port, and the nodes after n1
// route to the addresses the earlier ones got.
func StartCluster(t testing.TB, n int, opts ...natsserver.Option) []*natsserver.Server {
	t.Helper()
	if n < 2 {
		t.Fatalf("natsservertest: a cluster of %d nodes", n)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n2Port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var started []string // the cluster URLs of the nodes up
	nodes := make([]*natsserver.Server, 0, n)
	for i := range n {
		port, routes := -1, started
		switch i {
		case 0:
			routes = []string{fmt.Sprintf("nats-route://127.0.0.1:%d", n2Port)}
		case 1:
			port = n2Port
		}
		srv, err := natsserver.Start(append([]natsserver.Option{
			natsserver.WithServerName(fmt.Sprintf("n%d", i+1)),
			natsserver.WithCluster("herald-test", "127.0.0.1", port),
			natsserver.WithRoutes(routes...),
			natsserver.WithDataDir(t.TempDir()),
		}, opts...)...)
		if err != nil {
			t.Fatalf("natsservertest: start n%d: %v", i+1, err)
		}
		t.Cleanup(srv.Shutdown)
		nodes = append(nodes, srv)
		started = append(started, srv.ClusterURL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, srv := range nodes {
		if err := srv.JetStreamReady(ctx); err != nil {
			t.Fatalf("natsservertest: %s: %v", srv.Name(), err)
		}
	}
	return nodes
}

// URL returns the URL of nodes as one server list,
// "nats://127.0.0.1:4222,127.0.0.1:4223,…", the form Herald's nats:// URLs
// take and nats.go dials.
func URL(nodes ...*natsserver.Server) string {
	hosts := make([]string, len(nodes))
	for i, n := range nodes {
		hosts[i] = strings.TrimPrefix(n.ClientURL(), "nats://")
	}
	return "nats://" + strings.Join(hosts, ",")
}

// JetStream connects to url (one server, or a list as [URL] makes it) with
// nats.go's opts, for a test's own look at streams and buckets; the
// connection is closed when the test ends.
func JetStream(t testing.TB, url string, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("natsservertest: connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natsservertest: %v", err)
	}
	return js
}
