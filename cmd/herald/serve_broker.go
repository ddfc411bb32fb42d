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
		listen     string
		dataDir    string
		maxPayload int32
		name       string
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

Every flag can also be set from the environment: HERALD_LISTEN, HERALD_DATA_DIR,
HERALD_MAX_PAYLOAD, HERALD_SERVER_NAME.`,
		Example: `  herald serve broker --listen 127.0.0.1:4222 --data-dir ./.herald/nats
  herald serve user  --broker nats://127.0.0.1:4222 --registry nats://127.0.0.1:4222
  herald serve email --broker nats://127.0.0.1:4222

  HERALD_LISTEN=0.0.0.0:4222 HERALD_DATA_DIR=/var/lib/herald/nats herald serve broker`,
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
			srv, err := natsserver.Start(
				natsserver.WithHost(host),
				natsserver.WithPort(port),
				natsserver.WithDataDir(dataDir),
				natsserver.WithMaxPayload(maxPayload),
				natsserver.WithServerName(name),
				natsserver.WithLogger(log),
			)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "broker (NATS with JetStream) listening on %s\n  data %s\n  use  --broker %s --registry %s\n",
				srv.ClientURL(), srv.DataDir(), srv.ClientURL(), srv.ClientURL())
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
	f.StringVar(&name, "server-name", "herald", "the server's name, as clients and monitoring see it")
	return cmd
}
