package tracing

import (
	"context"
	"fmt"
	"io"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/herald-dev/herald/broker"
)

// Exporters [Setup] knows.
const (
	ExporterNone   = "none"
	ExporterStdout = "stdout"
	ExporterOTLP   = "otlp"
)

// Config says where spans go.
type Config struct {
	// Exporter is "none" (the default: no tracing), "stdout" (JSON, one span
	// per line, to Writer) or "otlp" (OTLP over gRPC to OTLPEndpoint).
	Exporter string
	// OTLPEndpoint is the collector's host:port (default: the exporter's,
	// localhost:4317, or OTEL_EXPORTER_OTLP_ENDPOINT).
	OTLPEndpoint string
	// OTLPInsecure sends OTLP without TLS (a local collector).
	OTLPInsecure bool
	// ServiceName is the service.name resource attribute (default
	// "herald").
	ServiceName string
	// Writer receives the stdout exporter's spans.
	Writer io.Writer
}

// Setup returns the TracerProvider cfg asks for and a function that flushes
// and stops it. With the "none" exporter, the provider is a no-op and
// shutdown does nothing.
func Setup(ctx context.Context, cfg Config) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	var exp sdktrace.SpanExporter
	switch cfg.Exporter {
	case "", ExporterNone:
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	case ExporterStdout:
		if cfg.Writer == nil {
			return nil, nil, fmt.Errorf("tracing: %w: the stdout exporter needs a writer", broker.ErrInvalidOption)
		}
		if exp, err = stdouttrace.New(stdouttrace.WithWriter(cfg.Writer)); err != nil {
			return nil, nil, fmt.Errorf("tracing: stdout exporter: %w", err)
		}
	case ExporterOTLP:
		var opts []otlptracegrpc.Option
		if cfg.OTLPEndpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpoint(cfg.OTLPEndpoint))
		}
		if cfg.OTLPInsecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		if exp, err = otlptracegrpc.New(ctx, opts...); err != nil {
			return nil, nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
		}
	default:
		return nil, nil, fmt.Errorf("tracing: %w: exporter %q is not none, stdout or otlp", broker.ErrInvalidOption, cfg.Exporter)
	}
	name := cfg.ServiceName
	if name == "" {
		name = "herald"
	}
	res := resource.NewSchemaless(attribute.String("service.name", name))
	p := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return p, p.Shutdown, nil
}
