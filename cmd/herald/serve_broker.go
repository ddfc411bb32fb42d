package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/herald-dev/herald/broker/nats/natsserver"
)

func newServeBrokerCmd() *cobra.Command {
	var listen, dataDir string
	var maxPayload int32
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded NATS JetStream server as its own process",
		Long: `Runs the NATS server with JetStream that herald up embeds, as its own process, so
that the services can run as separate processes against it:

  herald serve broker --listen 127.0.0.1:4222 --data-dir ./.herald/nats
  herald serve user  --broker nats://127.0.0.1:4222 --registry nats://127.0.0.1:4222
  herald serve email --broker nats://127.0.0.1:4222

Streams and consumers are kept in --data-dir, so messages survive a restart.
Stops gracefully on Ctrl-C or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, port, err := splitHostPort(listen)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			if port == 0 {
				port = -1
			}
			srv, err := natsserver.Start(natsserver.WithHost(host), natsserver.WithPort(port),
				natsserver.WithDataDir(dataDir), natsserver.WithMaxPayload(maxPayload),
				natsserver.WithLogger(slog.Default().With("part", "nats")))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "broker (NATS JetStream) listening on %s\n  data %s\n", srv.ClientURL(), srv.DataDir())
			<-cmd.Context().Done()
			slog.Info("broker shutting down")
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:4222", "address to listen on (port 0 picks a free one)")
	f.StringVar(&dataDir, "data-dir", ".herald/nats", "JetStream storage directory")
	f.Int32Var(&maxPayload, "max-payload", 8<<20, "largest message the server accepts, in bytes")
	return cmd
}
