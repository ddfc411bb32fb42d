package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// newRootCmd builds the whole command tree.
func newRootCmd() *cobra.Command {
	var logLevel, logFormat string
	root := &cobra.Command{
		Use:   "herald",
		Short: "Event-driven messaging between Go services, done so that nothing is lost",
		Long: `Herald runs a user service that publishes user.registered, an email service that
sends the welcome mail exactly once, and the brokers, registry and tools under them.

Every flag can also be set as an environment variable: HERALD_ and the flag name in
upper case with dashes as underscores (--broker is HERALD_BROKER).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd); err != nil {
				return err
			}
			logger, err := newLogger(cmd.ErrOrStderr(), logLevel, logFormat)
			if err != nil {
				return err
			}
			slog.SetDefault(logger)
			return nil
		},
	}
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&logFormat, "log-format", "text", "log format: text or json")

	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run one of Herald's services as its own process",
	}
	serve.AddCommand(newServeBrokerCmd(), newServeUserCmd(), newServeEmailCmd())
	bench := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency",
	}
	bench.AddCommand(newBenchBrokerCmd(), newBenchRegisterCmd())
	root.AddCommand(newUpCmd(), serve, newUsersCmd(), newMailsCmd(), newDLQCmd(), bench, newVersionCmd())
	root.Version = readBuildVersion().Version
	root.SetVersionTemplate("herald {{.Version}}\n")
	return root
}

// applyEnv sets every flag of cmd that the command line left unset from its
// HERALD_* environment variable, if any.
func applyEnv(cmd *cobra.Command) error {
	var errs []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		name := envName(f.Name)
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		if err := cmd.Flags().Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", name, err))
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("environment: %s", strings.Join(errs, "; "))
	}
	return nil
}

// envName is the environment variable of flag name: --smtp-url is
// HERALD_SMTP_URL.
func envName(flag string) string {
	return "HERALD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
