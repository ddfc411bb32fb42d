package main

import (
	"fmt"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/herald-dev/herald/broker/nats/natsserver"
)

// newServeBrokerCmd builds `herald serve broker`: a NATS server with
// JetStream, in this process, for services started as separate processes.
func newServeBrokerCmd() *cobra.Command {
	var (
		listen        string
		dataDir       string
		maxPayload    int32
		name          string
		clusterName   string
		clusterListen string
		routes        []string
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the broker: a NATS server with JetStream, data on disk",
		Long: `Runs a NATS server with JetStream in this process, listening on --listen and
keeping its streams in --data-dir, for Herald's services started as separate
processes (herald serve user, herald serve email) to share as their broker and
registry: give them --broker nats://<listen> and --registry nats://<listen>.

It prints the client URL once it accepts connections, and runs until Ctrl-C or
SIGTERM, then shuts down gracefully: clients are disconnected, JetStream writes
its state, and what it stored is there on the next start with the same
--data-dir.

A cluster: run three (or five) of them, each with a --server-name of its own,
the same --cluster-name, its own --cluster-listen address for the other nodes,
and --routes listing every node's cluster address (its own included: the same
list everywhere). JetStream then runs clustered, and the services' URLs list
the nodes' client addresses with replicas=3, so that every stream and the
registry's bucket are kept on three nodes and the loss of one loses nothing:
  --broker 'nats://127.0.0.1:4222,127.0.0.1:4223,127.0.0.1:4224?replicas=3'
Each node prints "JetStream cluster ready" once a majority of them is up and
has elected a leader; until then, streams cannot be created.

Every flag can also be set from the environment: HERALD_LISTEN, HERALD_DATA_DIR,
HERALD_MAX_PAYLOAD, HERALD_SERVER_NAME, HERALD_CLUSTER_NAME,
HERALD_CLUSTER_LISTEN, HERALD_ROUTES.`,
		Example: `  herald serve broker --listen 127.0.0.1:4222 --data-dir ./.herald/nats
  herald serve user  --broker nats://127.0.0.1:4222 --registry nats://127.0.0.1:4222
  herald serve email --broker nats://127.0.0.1:4222

  HERALD_LISTEN=0.0.0.0:4222 HERALD_DATA_DIR=/var/lib/herald/nats herald serve broker

  # a 3-node cluster on loopback (one terminal each)
  routes=nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6223,nats-route://127.0.0.1:6224
  herald serve broker --server-name n1 --listen 127.0.0.1:4222 --cluster-listen 127.0.0.1:6222 --routes $routes --data-dir ./.herald/n1
  herald serve broker --server-name n2 --listen 127.0.0.1:4223 --cluster-listen 127.0.0.1:6223 --routes $routes --data-dir ./.herald/n2
  herald serve broker --server-name n3 --listen 127.0.0.1:4224 --cluster-listen 127.0.0.1:6224 --routes $routes --data-dir ./.herald/n3
  nodes='nats://127.0.0.1:4222,127.0.0.1:4223,127.0.0.1:4224?replicas=3'
  herald serve user  --broker "$nodes" --registry "$nodes"
  herald serve email --broker "$nodes"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// main cancels the command's context on SIGINT and SIGTERM;
			// doing it here too keeps the command correct wherever it is
			// mounted.
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			host, port, err := splitHostPort(listen)
			if err != nil {
				return fmt.Errorf("--listen %q: %w", listen, err)
			}
			if port == 0 {
				port = -1 // natsserver's "pick a free port"
			}
			log := slog.Default().With("part", "nats")
			opts := []natsserver.Option{
				natsserver.WithHost(host),
				natsserver.WithPort(port),
				natsserver.WithDataDir(dataDir),
				natsserver.WithMaxPayload(maxPayload),
				natsserver.WithServerName(name),
				natsserver.WithLogger(log),
			}
			copts, err := clusterOptions(cmd, clusterName, clusterListen, routes)
			if err != nil {
				return err
			}
			srv, err := natsserver.Start(append(opts, copts...)...)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "broker (NATS with JetStream) listening on %s\n  data %s\n", srv.ClientURL(), srv.DataDir())
			if srv.ClusterURL() == "" {
				fmt.Fprintf(out, "  use  --broker %s --registry %s\n", srv.ClientURL(), srv.ClientURL())
			} else {
				fmt.Fprintf(out, "  cluster %s, node %s, routes on %s\n  use  --broker 'nats://<every node's host:port, comma-separated>?replicas=3' (and the same --registry)\n",
					clusterName, srv.Name(), srv.ClusterURL())
				if err := srv.JetStreamReady(ctx); err == nil {
					fmt.Fprintf(out, "JetStream cluster ready (node %s)\n", srv.Name())
				}
			}
			<-ctx.Done()
			log.Info("broker shutting down")
			srv.Shutdown()
			fmt.Fprintln(cmd.OutOrStdout(), "broker stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:4222", "address to listen on for NATS clients (host:port; port 0 picks a free one)")
	f.StringVar(&dataDir, "data-dir", "./.herald/nats", "directory of JetStream's data (created if missing, kept across restarts)")
	f.Int32Var(&maxPayload, "max-payload", natsserver.DefaultMaxPayload, "largest message, headers included, in bytes (at most 64 MiB)")
	f.StringVar(&name, "server-name", "herald", "the server's name, as clients and monitoring see it; each node of a cluster needs its own")
	f.StringVar(&clusterName, "cluster-name", "herald", "the cluster's name, the same on every node (with --cluster-listen)")
	f.StringVar(&clusterListen, "cluster-listen", "", "address to listen on for the other nodes of a cluster (host:port; empty: no cluster)")
	f.StringSliceVar(&routes, "routes", nil, "cluster addresses of the nodes, nats-route://host:port, comma-separated (every node's, this one's included)")
	return cmd
}

// clusterOptions checks the cluster flags and returns the options that make
// the server a cluster node, none when --cluster-listen is empty.
func clusterOptions(cmd *cobra.Command, clusterName, clusterListen string, routes []string) ([]natsserver.Option, error) {
	changed := cmd.Flags().Changed
	if clusterListen == "" {
		for _, f := range []string{"routes", "cluster-name"} {
			if changed(f) {
				return nil, fmt.Errorf("--%s needs --cluster-listen (this node's cluster address)", f)
			}
		}
		return nil, nil
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("--cluster-listen needs --routes: the cluster addresses of the nodes, nats-route://host:port,… (JetStream runs clustered only with routes)")
	}
	if !changed("server-name") {
		return nil, fmt.Errorf("--cluster-listen needs --server-name: each node of a cluster needs a name of its own (n1, n2, n3…)")
	}
	host, port, err := splitHostPort(clusterListen)
	if err != nil {
		return nil, fmt.Errorf("--cluster-listen %q: %w", clusterListen, err)
	}
	if port == 0 {
		port = -1 // natsserver's "pick a free port"
	}
	return []natsserver.Option{natsserver.WithCluster(clusterName, host, port), natsserver.WithRoutes(routes...)}, nil
}
