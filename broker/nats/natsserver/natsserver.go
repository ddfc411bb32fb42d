// Package natsserver runs a NATS server with JetStream inside the current
// process: the broker of `herald up`, of `herald serve broker`, and of the
// tests of broker/nats.
//
// It wraps github.com/nats-io/nats-server/v2 with the few settings Herald
// needs (address, data directory, maximum payload, logger) and a [Server.Restart]
// that brings the server back on the same address and data, which is how
// tests prove that nothing is lost across a broker restart.
//
//	srv, err := natsserver.Start(natsserver.WithDataDir(".herald/nats"))
//	if err != nil { … }
//	defer srv.Shutdown()
//	fmt.Println(srv.ClientURL()) // nats://127.0.0.1:41234
package natsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrStart wraps every reason [Start] or [Server.Restart] could not bring a
// server up.
var ErrStart = errors.New("natsserver: cannot start")

// Server is a running in-process NATS server with JetStream. Its methods are
// safe for concurrent use.
type Server struct {
	cfg    config
	ownDir bool // the data directory is a temporary one, removed by Shutdown

	mu     sync.Mutex
	srv    *server.Server
	port   int // the port actually bound, kept across restarts
	closed bool
	// clusterPort is the cluster port actually bound, kept across restarts
	// (the other nodes' routes point at it); 0 without a cluster.
	clusterPort int
}

// Start starts a server with JetStream and waits until it accepts clients.
//
// Without options it listens on 127.0.0.1 on a random port and keeps its
// data in a new temporary directory that [Server.Shutdown] removes. With
// [WithDataDir] the data lives in that directory and is kept.
func Start(opts ...Option) (*Server, error) {
	cfg := defaults()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	switch {
	case cfg.clusterName != "" && len(cfg.routes) == 0:
		return nil, invalid("a cluster node needs routes (WithRoutes): nats-server runs clustered JetStream only with configured routes")
	case cfg.clusterName == "" && len(cfg.routes) > 0:
		return nil, invalid("routes without a cluster (WithCluster)")
	case cfg.clusterName != "" && !cfg.nameSet:
		return nil, invalid("a cluster node needs a server name of its own (WithServerName)")
	}
	s := &Server{cfg: cfg, port: cfg.port, clusterPort: cfg.clusterPort}
	if s.cfg.dataDir == "" {
		dir, err := os.MkdirTemp("", "herald-nats-*")
		if err != nil {
			return nil, fmt.Errorf("%w: temporary data directory: %v", ErrStart, err)
		}
		s.cfg.dataDir, s.ownDir = dir, true
	} else if err := os.MkdirAll(s.cfg.dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("%w: data directory: %v", ErrStart, err)
	}
	srv, err := s.start()
	if err != nil {
		if s.ownDir {
			_ = os.RemoveAll(s.cfg.dataDir)
		}
		return nil, err
	}
	s.srv = srv
	return s, nil
}

// start starts one nats-server on s's address and data directory.
func (s *Server) start() (*server.Server, error) {
	o := &server.Options{
		ServerName: s.cfg.name,
		Host:       s.cfg.host,
		Port:       s.port,
		JetStream:  true,
		StoreDir:   s.cfg.dataDir,
		MaxPayload: s.cfg.maxPayload,
		NoSigs:     true, // the program owns its signals
		NoLog:      true, // logging goes through SetLoggerV2 below
	}
	if s.cfg.clusterName != "" {
		o.Cluster = server.ClusterOpts{Name: s.cfg.clusterName, Host: s.cfg.clusterHost, Port: s.clusterPort}
		o.Routes = s.cfg.routes
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	log := newLogger(s.cfg.logger)
	srv.SetLoggerV2(log, false, false, false)
	srv.Start()
	if !readyOrFailed(srv, log, s.cfg.readyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		if f := log.fatalSuffix(); f != "" {
			return nil, fmt.Errorf("%w: on %s%s", ErrStart, net.JoinHostPort(s.cfg.host, strconv.Itoa(s.port)), f)
		}
		return nil, fmt.Errorf("%w: not ready for connections on %s after %v", ErrStart,
			net.JoinHostPort(s.cfg.host, strconv.Itoa(s.port)), s.cfg.readyTimeout)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("%w: JetStream did not start in %s%s", ErrStart, s.cfg.dataDir, log.fatalSuffix())
	}
	if a, ok := srv.Addr().(*net.TCPAddr); ok {
		s.port = a.Port
	}
	if a := srv.ClusterAddr(); a != nil {
		s.clusterPort = a.Port
	}
	return srv, nil
}

// readyOrFailed waits until srv accepts clients (true), or until it reports
// a fatal error, such as a port already in use, or timeout passes (false).
// nats-server reports a listener it cannot open through its logger and
// keeps going, so without the fatal signal a busy port would cost the whole
// timeout before the program could say so and exit.
func readyOrFailed(srv *server.Server, log *logger, timeout time.Duration) bool {
	ready := make(chan bool, 1)
	go func() { ready <- srv.ReadyForConnections(timeout) }()
	select {
	case ok := <-ready:
		return ok
	case <-log.failed:
		return false
	}
}

// ClientURL returns the URL clients connect to, such as
// "nats://127.0.0.1:4222". It stays the same across [Server.Restart].
func (s *Server) ClientURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	host := s.cfg.host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "nats://" + net.JoinHostPort(host, strconv.Itoa(s.port))
}

// ClusterURL returns the address the other nodes of the cluster route to,
// such as "nats-route://127.0.0.1:6222", or "" when the server is not a
// cluster node ([WithCluster]). It stays the same across [Server.Restart].
func (s *Server) ClusterURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.clusterName == "" {
		return ""
	}
	host := s.cfg.clusterHost
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "nats-route://" + net.JoinHostPort(host, strconv.Itoa(s.clusterPort))
}

// Name returns the server's name ([WithServerName]): what JetStream
// reports as the leader or a replica of a stream.
func (s *Server) Name() string { return s.cfg.name }

// JetStreamReady waits until JetStream can serve requests, or ctx is done.
// A single server is ready once [Start] returns. A cluster node is ready
// once it is in contact with the cluster's JetStream meta leader and
// current with it, which needs a majority of the nodes up: until then,
// creating a stream fails.
func (s *Server) JetStreamReady(ctx context.Context) error {
	for {
		s.mu.Lock()
		srv, closed := s.srv, s.closed
		s.mu.Unlock()
		if closed {
			return fmt.Errorf("natsserver: JetStream ready: server shut down")
		}
		var why string
		if srv == nil {
			why = "server restarting"
		} else if h := srv.Healthz(&server.HealthzOptions{JSMetaOnly: true}); h.StatusCode == http.StatusOK {
			return nil
		} else {
			why = h.Error
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsserver: JetStream not ready (%s): %w", why, ctx.Err())
		case <-time.After(50 * time.Millisecond): // polling the server's health
		}
	}
}

// Port returns the TCP port the server listens on.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// DataDir returns the directory that holds the server's JetStream data.
func (s *Server) DataDir() string { return s.cfg.dataDir }

// NATS returns the underlying nats-server, for what this package does not
// wrap (monitoring, account details). It changes after [Server.Restart].
func (s *Server) NATS() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Restart shuts the server down, waits until it has stopped, and starts it
// again on the same port, cluster port and data directory. Connected
// clients see a disconnection and reconnect; what JetStream stored on file
// survives, and a cluster node catches up with the others.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%w: restart after shutdown", ErrStart)
	}
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
	var err error
	// The port was just released; another process may grab it in between,
	// and the kernel may take a moment to let it go: retry briefly.
	deadline := time.Now().Add(s.cfg.readyTimeout)
	for {
		var srv *server.Server
		srv, err = s.start()
		if err == nil {
			s.srv = srv
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond) // backoff between attempts to bind, not synchronisation
	}
}

// Shutdown stops the server, waits until it has stopped, and removes its data
// directory when [Start] made a temporary one. Calls after the first do
// nothing.
func (s *Server) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
	if s.ownDir {
		_ = os.RemoveAll(s.cfg.dataDir)
	}
}

// WaitForShutdown blocks until the server has been shut down (by
// [Server.Shutdown] or by the server itself).
func (s *Server) WaitForShutdown() {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv != nil {
		srv.WaitForShutdown()
	}
}
