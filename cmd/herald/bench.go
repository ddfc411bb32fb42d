package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/herald-dev/herald/internal/bench"
)

// benchReport is what `herald bench broker` prints: the run's figures and,
// where the backend has one, the raw engine baseline measured in the same
// process and the ratio to it.
type benchReport struct {
	Backend string `json:"backend"`
	bench.Result
	*baseline
}

type baseline struct {
	BaselinePublishPerSec float64 `json:"baseline_publish_per_sec"`
	BaselineConsumePerSec float64 `json:"baseline_consume_per_sec"`
	// HeraldPublishPerSec and HeraldConsumePerSec are measured as the
	// baseline is: publish with no consumer running, then consume.
	HeraldPublishPerSec float64 `json:"herald_publish_per_sec"`
	HeraldConsumePerSec float64 `json:"herald_consume_per_sec"`
	PublishRatio        float64 `json:"publish_ratio"`
	ConsumeRatio        float64 `json:"consume_ratio"`
	// BaselinePerSec and Ratio are the lower of the publish and consume
	// figures: the ratio the target is judged on.
	BaselinePerSec float64 `json:"baseline_per_sec"`
	Ratio          float64 `json:"ratio"`
}

// ratios fills in the ratios of Herald's rates to the baseline's.
func (b *baseline) ratios() {
	if b == nil {
		return
	}
	ratio := func(h, raw float64) float64 {
		if raw == 0 {
			return 0
		}
		return float64(int(h/raw*100+0.5)) / 100
	}
	b.PublishRatio = ratio(b.HeraldPublishPerSec, b.BaselinePublishPerSec)
	b.ConsumeRatio = ratio(b.HeraldConsumePerSec, b.BaselineConsumePerSec)
	b.BaselinePerSec, b.Ratio = b.BaselinePublishPerSec, b.PublishRatio
	if b.ConsumeRatio < b.PublishRatio {
		b.BaselinePerSec, b.Ratio = b.BaselineConsumePerSec, b.ConsumeRatio
	}
}

func newBenchBrokerCmd() *cobra.Command {
	var (
		backend  string
		cfg      bench.Config
		asJSON   bool
		baseline bool
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Measure a broker: publish → handle → ack, with loss, duplicates and latency counted",
		Long: `Publishes --messages messages of --size bytes from --publishers goroutines to a fresh
topic while a fresh queue group consumes them, and prints published_per_sec,
delivered_per_sec, p50_ms, p99_ms, lost and duplicates.

For nats://, amqp:// and redis://, the engine's raw client (nats.go JetStream, amqp091-go
publisher confirms + manual ack, go-redis XADD + XREADGROUP/XACK) runs as a baseline in
the same process against the same server, and the ratios to it are printed.
"nats://" with no host starts an embedded server for the run.`,
		Example: `  herald bench broker --backend mem:// --messages 1000000
  herald bench broker --backend nats:// --messages 200000 --publishers 4 --batch 256 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			target, cleanup, err := benchTarget(ctx, backend)
			if err != nil {
				return err
			}
			defer cleanup()
			b, err := openBroker(ctx, target)
			if err != nil {
				return err
			}
			defer b.Close(context.WithoutCancel(ctx))

			bar := newProgress(cmd.ErrOrStderr(), cfg.Messages, "delivered")
			cfg.Progress = bar.set
			res, err := bench.Run(ctx, b, cfg)
			bar.finish()
			if err != nil {
				return err
			}
			rep := benchReport{Backend: redactURL(backend), Result: res}
			if baseline {
				if rep.baseline, err = runBaseline(ctx, b, target, cfg); err != nil {
					return err
				}
				rep.baseline.ratios()
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printBench(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&backend, "backend", "mem://", "broker URL to measure")
	f.IntVar(&cfg.Messages, "messages", 100_000, "messages to publish")
	f.IntVar(&cfg.Size, "size", 256, "body size in bytes (at least 16)")
	f.IntVar(&cfg.Publishers, "publishers", 1, "concurrent publishers")
	f.IntVar(&cfg.Batch, "batch", 1, "publish in batches of this many (broker.PublishBatch) when > 1")
	f.IntVar(&cfg.Concurrency, "concurrency", 1, "subscriber handler concurrency")
	f.DurationVar(&cfg.Idle, "idle", 10*time.Second, "give up waiting when nothing arrived for this long (what is missing then is lost)")
	f.BoolVar(&baseline, "baseline", true, "also run the engine's raw client baseline where there is one (nats)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func printBench(w io.Writer, r benchReport) {
	fmt.Fprintf(w, "backend            %s\n", r.Backend)
	fmt.Fprintf(w, "messages           %d × %d bytes, %d publishers, batch %d, concurrency %d\n", r.Messages, r.Size, r.Publishers, r.Batch, r.Concurrency)
	fmt.Fprintf(w, "published_per_sec  %.0f\n", r.PublishedPerSec)
	fmt.Fprintf(w, "delivered_per_sec  %.0f\n", r.DeliveredPerSec)
	fmt.Fprintf(w, "p50_ms             %.2f\n", r.P50ms)
	fmt.Fprintf(w, "p99_ms             %.2f\n", r.P99ms)
	fmt.Fprintf(w, "lost               %d\n", r.Lost)
	fmt.Fprintf(w, "duplicates         %d\n", r.Duplicates)
	if r.baseline != nil {
		fmt.Fprintf(w, "baseline publish   %.0f/s  herald %.0f/s  ratio %.2f\n", r.BaselinePublishPerSec, r.HeraldPublishPerSec, r.PublishRatio)
		fmt.Fprintf(w, "baseline consume   %.0f/s  herald %.0f/s  ratio %.2f\n", r.BaselineConsumePerSec, r.HeraldConsumePerSec, r.ConsumeRatio)
		fmt.Fprintf(w, "ratio              %.2f\n", r.Ratio)
	}
}

// progress is a progress bar on a terminal and nothing elsewhere.
type progress struct{ bar *progressbar.ProgressBar }

func newProgress(w io.Writer, total int, what string) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)}
}

func (p *progress) set(n int) {
	if p.bar != nil {
		_ = p.bar.Set(n)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
