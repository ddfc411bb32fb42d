package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-dev/herald/tracing"
)

// traceFlags are the tracing flags of the commands that run services.
type traceFlags struct {
	exporter, endpoint string
	insecure           bool
}

func (t *traceFlags) add(f *pflag.FlagSet) {
	f.StringVar(&t.exporter, "trace-exporter", tracing.ExporterNone, "where spans go: none, stdout or otlp")
	f.StringVar(&t.endpoint, "otlp-endpoint", "", "OTLP/gRPC collector host:port (default localhost:4317 or OTEL_EXPORTER_OTLP_ENDPOINT)")
	f.BoolVar(&t.insecure, "otlp-insecure", false, "send OTLP without TLS (a local collector)")
}

// setup returns the tracer provider the flags ask for (nil for none) and a
// function that flushes it, bounded by a few seconds.
func (t *traceFlags) setup(cmd *cobra.Command, service string) (trace.TracerProvider, func(), error) {
	tp, shutdown, err := tracing.Setup(cmd.Context(), tracing.Config{Exporter: t.exporter, OTLPEndpoint: t.endpoint,
		OTLPInsecure: t.insecure, ServiceName: service, Writer: cmd.OutOrStdout()})
	if err != nil {
		return nil, nil, err
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			slog.Warn("tracing: flush", "err", err)
		}
	}
	if t.exporter == tracing.ExporterNone || t.exporter == "" {
		return nil, stop, nil
	}
	return tp, stop, nil
}
