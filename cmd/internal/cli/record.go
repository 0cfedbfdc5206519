package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/trace-capture/trace-capture/capture"
	"github.com/trace-capture/trace-capture/receiver"
)

// RecordOptions are the flags of `trace-capture record`.
type RecordOptions struct {
	IO      *Streams
	Factory *Factory

	Duration        time.Duration
	GRPCAddr        string
	HTTPAddr        string
	MaxBytes        int64
	MaxRequestBytes int
	Output          string
	Redact          bool
	RedactOptions   RedactOptions
}

// NewCmdRecord returns `trace-capture record`.
func NewCmdRecord(f *Factory, runF func(context.Context, *RecordOptions) error) *cobra.Command {
	opts := &RecordOptions{IO: f.IO, Factory: f}
	opts.RedactOptions.IO = f.IO
	cmd := &cobra.Command{
		Use:   "record",
		Short: "Receive OTLP spans on local ports and write them to a bundle",
		Long: `Receive OTLP traces (gRPC and HTTP, protobuf or JSON, gzip or zstd) on local
ports and record them, as sent, into a bundle that 'trace-capture analyze' reads.

Point any OpenTelemetry exporter at the printed addresses: a component you are
instrumenting, etcd's --distributed-tracing-address, a kube-apiserver
TracingConfiguration endpoint, or OTEL_EXPORTER_OTLP_ENDPOINT. Recording stops
at --duration or on Ctrl-C / SIGTERM; the bundle is complete either way. When
the archive would pass --max-bytes, newer spans are refused (senders are told
to retry) and counted as dropped in the manifest: the start of the window is
always kept.

The listeners are on loopback unless an address says otherwise.
` + exitStatusHelp,
		Example: `  # record for five minutes
  trace-capture record --duration 5m -o etcd-bundle.tgz

  # record until Ctrl-C, with a 1 GiB budget, gRPC only
  trace-capture record --duration 0 --otlp-http "" --max-bytes 1073741824`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
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
	fl.DurationVar(&opts.Duration, "duration", 5*time.Minute, "how long to record; 0 records until interrupted")
	fl.StringVar(&opts.GRPCAddr, "otlp-grpc", receiver.DefaultGRPCAddr, "OTLP/gRPC listen address (\"\" disables)")
	fl.StringVar(&opts.HTTPAddr, "otlp-http", receiver.DefaultHTTPAddr, "OTLP/HTTP listen address (\"\" disables)")
	fl.Int64Var(&opts.MaxBytes, "max-bytes", 2<<30, "byte budget of the span archive; 0 for none")
	fl.IntVar(&opts.MaxRequestBytes, "max-request-bytes", receiver.DefaultMaxRequestBytes, "largest request accepted, after decompression")
	fl.StringVarP(&opts.Output, "output", "o", "", "bundle to write (default trace-capture-record-<time>.tgz)")
	fl.BoolVar(&opts.Redact, "redact", false, "pseudonymise the bundle before it is written (see 'trace-capture redact --help')")
	opts.RedactOptions.addFlags(cmd)
	return cmd
}

// Validate checks the flags.
func (o *RecordOptions) Validate() error {
	if o.Duration < 0 {
		return flagErrorf("`--duration` must not be negative")
	}
	if o.MaxBytes < 0 {
		return flagErrorf("`--max-bytes` must not be negative")
	}
	if o.MaxRequestBytes <= 0 {
		return flagErrorf("`--max-request-bytes` must be positive")
	}
	cfg := o.receiverConfig()
	if err := cfg.Validate(); err != nil {
		return flagErrorf("bad listen addresses: %v", err)
	}
	return nil
}

func (o *RecordOptions) receiverConfig() receiver.Config {
	return receiver.Config{GRPCAddr: o.GRPCAddr, HTTPAddr: o.HTTPAddr, MaxRequestBytes: o.MaxRequestBytes}
}

// Run records and prints the summary.
func (o *RecordOptions) Run(ctx context.Context) error {
	out := o.Output
	if out == "" {
		out = "trace-capture-record-" + o.Factory.Now().UTC().Format("20060102T150405Z") + ".tgz"
	}
	prog := newRecordProgress(o.IO, o.Duration)
	res, err := capture.Record(ctx, capture.RecordOptions{
		Receiver:    o.receiverConfig(),
		MaxBytes:    o.MaxBytes,
		Duration:    o.Duration,
		Output:      out,
		ToolVersion: o.Factory.Version,
		Logger:      o.Factory.Logger(),
		Now:         o.Factory.Now,
		OnListening: func(a receiver.Addrs) {
			var parts []string
			if a.GRPC != "" {
				parts = append(parts, "OTLP/gRPC on "+a.GRPC)
			}
			if a.HTTP != "" {
				parts = append(parts, "OTLP/HTTP on http://"+a.HTTP+"/v1/traces")
			}
			until := "until interrupted"
			if o.Duration > 0 {
				until = "for " + o.Duration.String()
			}
			fmt.Fprintf(o.IO.ErrOut, "recording %s: %s\n", until, strings.Join(parts, ", "))
		},
		Progress: prog.update,
	})
	prog.finish()
	if err != nil {
		return err
	}
	if o.Redact {
		if err := o.RedactOptions.redactInPlace(context.WithoutCancel(ctx), out); err != nil {
			return err
		}
	}
	return printRecordSummary(o.IO.Out, res)
}

func printRecordSummary(w io.Writer, res *capture.RecordResult) error {
	m := res.Manifest
	fmt.Fprintf(w, "bundle: %s (%s)\n", res.Output, humanBytes(res.Bytes))
	fmt.Fprintf(w, "window: %s to %s (%s)\n", m.Window.Start.Format(time.RFC3339), m.Window.End.Format(time.RFC3339), m.Window.End.Sub(m.Window.Start).Round(time.Millisecond))
	fmt.Fprintf(w, "spans:  %d received", m.TotalSpans())
	if d := m.TotalDropped(); d > 0 {
		fmt.Fprintf(w, ", %d dropped", d)
	}
	fmt.Fprintln(w)
	for _, s := range m.Sources {
		name := s.Service
		if name == "" {
			name = "(no service.name)"
		}
		if s.Host != "" {
			name += " on " + s.Host
		}
		fmt.Fprintf(w, "  %-40s %10d spans", name, s.Spans)
		for _, d := range s.Dropped {
			fmt.Fprintf(w, "  %d dropped (%s)", d.Spans, d.Reason)
		}
		fmt.Fprintln(w)
	}
	for _, r := range m.Refused {
		fmt.Fprintf(w, "  refused: %d requests (%s)\n", r.Requests, r.Reason)
	}
	if res.Interrupted {
		fmt.Fprintln(w, "note:   interrupted before the end of the window")
	}
	_, err := fmt.Fprintf(w, "next:   trace-capture analyze %s\n", res.Output)
	return err
}

// recordProgress draws a progress line on a terminal's stderr; elsewhere
// it draws nothing.
type recordProgress struct {
	bar      *progressbar.ProgressBar
	duration time.Duration
}

func newRecordProgress(s *Streams, d time.Duration) *recordProgress {
	if !s.IsStderrTTY() {
		return &recordProgress{}
	}
	max := int64(-1)
	if d > 0 {
		max = int64(d / time.Second)
	}
	bar := progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(s.ErrOut),
		progressbar.OptionSetWidth(24),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionClearOnFinish(),
	)
	return &recordProgress{bar: bar, duration: d}
}

func (p *recordProgress) update(rp capture.RecordProgress) {
	if p.bar == nil {
		return
	}
	rate := 0.0
	if s := rp.Elapsed.Seconds(); s > 0 {
		rate = float64(rp.Stats.Spans) / s
	}
	desc := fmt.Sprintf("%d spans (%.0f/s), %s", rp.Stats.Spans, rate, humanBytes(rp.Stats.Archive.WrittenBytes))
	if p.duration > 0 {
		desc += fmt.Sprintf(", %s left", rp.Remaining.Round(time.Second))
	}
	if rp.Stats.DroppedSpans > 0 {
		desc += fmt.Sprintf(", %d DROPPED", rp.Stats.DroppedSpans)
	}
	if per := perService(rp.Stats); per != "" {
		desc += " | " + per
	}
	p.bar.Describe(desc)
	_ = p.bar.Set64(int64(rp.Elapsed / time.Second))
}

func (p *recordProgress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

func perService(st receiver.RecorderStats) string {
	by := map[string]int64{}
	for _, s := range st.Sources {
		by[s.Service] += s.Spans
	}
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		if n == "" {
			parts = append(parts, fmt.Sprintf("?:%d", by[n]))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s:%d", n, by[n]))
	}
	return strings.Join(parts, " ")
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
