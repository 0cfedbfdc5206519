package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/trace-capture/trace-capture/capture"
	"github.com/trace-capture/trace-capture/receiver/archive/otlpfile"
)

// ImportOptions are the flags of `trace-capture import`.
type ImportOptions struct {
	IO      *Streams
	Factory *Factory
	Inputs  []string
	Output  string
}

// NewCmdImport returns `trace-capture import`.
func NewCmdImport(f *Factory, runF func(context.Context, *ImportOptions) error) *cobra.Command {
	opts := &ImportOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "import FILE... -o BUNDLE",
		Short: "Turn trace files captured by other tools into a bundle",
		Long: `Turn trace files into a bundle: the OpenTelemetry Collector file exporter's
output (OTLP JSON lines, or length-prefixed protobuf, optionally zstd-compressed),
a plain OTLP JSON document or array, any of them gzip- or zstd-compressed.
The format is detected from the content.
` + exitStatusHelp,
		Example: `  trace-capture import collector-traces.jsonl -o bundle.tgz
  trace-capture import node1.pb.zst node2.pb.zst -o bundle.tgz`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Inputs = args
			if opts.Output == "" {
				return flagErrorf("`--output` is required")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return opts.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "bundle to write")
	return cmd
}

// Run imports.
func (o *ImportOptions) Run(ctx context.Context) error {
	res, err := capture.Import(ctx, capture.ImportOptions{Inputs: o.Inputs, Output: o.Output, ToolVersion: o.Factory.Version, Now: o.Factory.Now})
	if err != nil {
		return err
	}
	for _, in := range o.Inputs {
		fmt.Fprintf(o.IO.ErrOut, "%s: %s\n", in, res.Formats[in])
	}
	fmt.Fprintf(o.IO.Out, "bundle: %s (%d spans from %d sources)\n", o.Output, res.Manifest.TotalSpans(), len(res.Manifest.Sources))
	return nil
}

// ExportOptions are the flags of `trace-capture export`.
type ExportOptions struct {
	IO       *Streams
	Input    string
	Format   string
	Output   string
	Endpoint string
	HTTP     bool
}

// NewCmdExport returns `trace-capture export`.
func NewCmdExport(f *Factory, runF func(context.Context, *ExportOptions) error) *cobra.Command {
	opts := &ExportOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "export BUNDLE",
		Short: "Write a bundle's spans out as OTLP files, or replay them to an OTLP backend",
		Long: `Write every span of a bundle out again, losslessly:

  --format otlp-json   OTLP JSON lines, as the Collector file exporter writes
                       them (Jaeger's upload, otel-tui --from-json-file and the
                       Collector's otlpjsonfile receiver read this)
  --format otlp-proto  length-prefixed OTLP protobuf, byte-identical to what the
                       components sent

or, with --otlp-endpoint, send them to any OTLP backend (Jaeger, Tempo, a
Collector) over gRPC, or over HTTP with --otlp-http.
` + exitStatusHelp,
		Example: `  trace-capture export bundle.tgz --format otlp-json -o traces.jsonl
  trace-capture export bundle.tgz --otlp-endpoint localhost:4317`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Input = args[0]
			if err := opts.Validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return opts.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Format, "format", string(otlpfile.FormatJSON), "file format: otlp-json or otlp-proto")
	fl.StringVarP(&opts.Output, "output", "o", "-", "file to write, - for stdout")
	fl.StringVar(&opts.Endpoint, "otlp-endpoint", "", "replay to this OTLP endpoint (host:port) instead of writing a file")
	fl.BoolVar(&opts.HTTP, "otlp-http", false, "replay over OTLP/HTTP instead of gRPC")
	return cmd
}

// Validate checks the flags.
func (o *ExportOptions) Validate() error {
	if o.Endpoint == "" {
		if o.HTTP {
			return flagErrorf("`--otlp-http` needs `--otlp-endpoint`")
		}
		switch otlpfile.Format(o.Format) {
		case otlpfile.FormatJSON, otlpfile.FormatProto:
		default:
			return flagErrorf("`--format` must be otlp-json or otlp-proto, not %q", o.Format)
		}
	}
	return nil
}

// Run exports.
func (o *ExportOptions) Run(ctx context.Context) (err error) {
	opts := capture.ExportOptions{Input: o.Input, Format: otlpfile.Format(o.Format), Endpoint: o.Endpoint, HTTP: o.HTTP}
	if o.Endpoint == "" {
		var w io.Writer = o.IO.Out
		if o.Output != "-" {
			f, err := os.OpenFile(o.Output, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("create output: %w", err)
			}
			defer func() {
				if cerr := f.Close(); cerr != nil && err == nil {
					err = fmt.Errorf("close output: %w", cerr)
				}
			}()
			w = f
		}
		opts.Out = w
	}
	res, err := capture.Export(ctx, opts)
	if err != nil {
		return err
	}
	dest := o.Output
	if o.Endpoint != "" {
		dest = o.Endpoint
	}
	fmt.Fprintf(o.IO.ErrOut, "exported %d spans in %d requests to %s", res.Spans, res.Records, dest)
	if res.Rejected > 0 {
		fmt.Fprintf(o.IO.ErrOut, " (%d rejected by the target)", res.Rejected)
	}
	fmt.Fprintln(o.IO.ErrOut)
	return nil
}
