package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/herald-dev/herald/gen/herald/user/v1/userv1connect"
	"github.com/herald-dev/herald/internal/bench"
	"github.com/herald-dev/herald/internal/system"
)

func newBenchRegisterCmd() *cobra.Command {
	var (
		cfg    bench.RegisterConfig
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Measure registration: throughput against bcrypt, Get under load, Create → mail",
		Long: `Starts the whole system as herald up does (embedded NATS JetStream, SQLite, SMTP sink)
in a temporary directory and measures, in this one process:

  bcrypt_bound_per_sec    hashes per second on all cores at --bcrypt-cost (the ceiling)
  registrations_per_sec   --users registrations at --concurrency, and ratio to the bound
  get_p50_ms, get_p99_ms  Get latency while those registrations saturate the CPU
  mail_p99_ms             Create → mail in the mailbox, one registration at a time
  mail_beyond_hash_p99_ms that minus the time of one hash made just before each
  mail_after_create_p99_ms from Create's response to the mail`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			dir, err := os.MkdirTemp("", "herald-bench-register-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			s, err := system.Start(ctx, system.Config{
				DataDir: dir, NATSListen: "127.0.0.1:0", SMTPListen: "127.0.0.1:0", UserListen: "127.0.0.1:0",
				BcryptCost: cfg.BcryptCost, OpenBroker: openBroker, OpenRegistry: openRegistry,
			})
			if err != nil {
				return err
			}
			defer s.Stop(context.WithoutCancel(ctx))
			cfg.Mailbox = s.MailboxDir
			bar := newProgress(cmd.ErrOrStderr(), cfg.Users, "registered")
			cfg.Progress = bar.set
			client := userv1connect.NewUserServiceClient(http.DefaultClient, "http://"+s.UserAddr)
			res, err := bench.Register(ctx, client, cfg)
			bar.finish()
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "bcrypt cost %d on %d cores: bound %.1f hashes/s, one hash %.1f ms\n", res.BcryptCost, res.Cores, res.BcryptBoundPerSec, res.HashMs)
			fmt.Fprintf(w, "registrations      %.1f/s (%d users, concurrency %d, %d errors)  ratio %.2f\n", res.RegistrationsPerSec, res.Users, res.Concurrency, res.Errors, res.Ratio)
			fmt.Fprintf(w, "get under load     p50 %.2f ms  p99 %.2f ms  (%d calls)\n", res.GetP50ms, res.GetP99ms, res.Gets)
			fmt.Fprintf(w, "create → mail      p50 %.2f ms  p99 %.2f ms  beyond hash p99 %.2f ms  after response p99 %.2f ms\n",
				res.MailP50ms, res.MailP99ms, res.MailBeyondHashP99ms, res.MailAfterCreateP99ms)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Users, "users", 200, "registrations under saturation")
	f.IntVar(&cfg.Concurrency, "concurrency", 4*runtime.GOMAXPROCS(0), "registrations in flight at once")
	f.IntVar(&cfg.Latency, "latency", 50, "registrations made one at a time to measure Create → mail")
	f.IntVar(&cfg.BcryptCost, "bcrypt-cost", 10, "bcrypt cost")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
