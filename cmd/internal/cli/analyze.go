package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/trace-capture/trace-capture/analyze"
	"github.com/trace-capture/trace-capture/report"
)

// AnalyzeOptions are the flags of `trace-capture analyze`.
type AnalyzeOptions struct {
	IO      *Streams
	Factory *Factory

	Input    string
	Baseline string
	OutDir   string
	Top      int
}

// NewCmdAnalyze returns `trace-capture analyze`.
func NewCmdAnalyze(f *Factory, runF func(context.Context, *AnalyzeOptions) error) *cobra.Command {
	opts := &AnalyzeOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "analyze BUNDLE",
		Short: "Analyse a bundle offline and write HTML and JSON reports",
		Long: `Assemble the traces of a bundle and find where the time went: cross-component
edges (kube-apiserver → etcd, kubelet → CRI-O/containerd) with client, server and
gap latencies, the critical path of every trace aggregated per component and
operation, the slow paths from root to bottleneck, the slowest traces, errors,
clock skew between hosts, Kubernetes groupings, and capture-quality warnings.

It works offline. BUNDLE may also be any trace file 'trace-capture import'
reads (an OpenTelemetry Collector file exporter capture, for example). With
--baseline, every edge, operation and path is compared with another capture.

It writes DIR/report.html (one self-contained page) and DIR/report.json
(schema in docs/report-json.md) and prints a summary.
` + exitStatusHelp,
		Example: `  trace-capture analyze bundle.tgz
  trace-capture analyze after.tgz --baseline before.tgz -o upgrade-report
  trace-capture analyze collector-traces.jsonl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Input = args[0]
			if opts.Top < 1 {
				return flagErrorf("`--top` must be at least 1")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return opts.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Baseline, "baseline", "", "a capture to compare with")
	fl.StringVarP(&opts.OutDir, "output", "o", "", "report folder (default: next to the input, named after it)")
	fl.IntVar(&opts.Top, "top", 10, "length of the ranked lists")
	return cmd
}

// defaultReportDir names the report folder after the input: bundle.tgz
// gives bundle-report next to it.
func defaultReportDir(input string) string {
	base := filepath.Base(input)
	for _, ext := range []string{".tgz", ".tar.gz", ".gz", ".zst", ".jsonl", ".json", ".pb"} {
		base = strings.TrimSuffix(base, ext)
	}
	return filepath.Join(filepath.Dir(input), base+"-report")
}

// Run analyses and writes the reports.
func (o *AnalyzeOptions) Run(ctx context.Context) error {
	log := o.Factory.Logger()
	began := o.Factory.Now()
	opts := analyze.Options{Top: o.Top, Logger: log}
	if o.Baseline != "" {
		base, err := o.analyze(ctx, o.Baseline, analyze.Options{Top: o.Top, Logger: log}, "baseline")
		if err != nil {
			return fmt.Errorf("analyze baseline: %w", err)
		}
		opts.Baseline = base
		opts.BaselineLabel = filepath.Base(o.Baseline)
	}
	res, err := o.analyze(ctx, o.Input, opts, "analyzing")
	if err != nil {
		return err
	}

	dir := o.OutDir
	if dir == "" {
		dir = defaultReportDir(o.Input)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create report folder: %w", err)
	}
	htmlPath, jsonPath := filepath.Join(dir, "report.html"), filepath.Join(dir, "report.json")
	if err := writeFileAtomic(jsonPath, func(f *os.File) error { return report.WriteJSON(f, res) }); err != nil {
		return err
	}
	title := "trace-capture report: " + filepath.Base(o.Input)
	if err := writeFileAtomic(htmlPath, func(f *os.File) error {
		return report.WriteHTML(f, res, report.HTMLOptions{Title: title, GeneratedAt: o.Factory.Now().UTC(), ToolVersion: o.Factory.Version})
	}); err != nil {
		return err
	}
	if err := report.WriteSummary(o.IO.Out, res, report.SummaryOptions{}); err != nil {
		return err
	}
	fmt.Fprintf(o.IO.Out, "\nreport: %s\njson:   %s\n", htmlPath, jsonPath)
	log.Info("analysis done", "spans", res.Summary.Spans, "elapsed", o.Factory.Now().Sub(began).Round(time.Millisecond))
	return nil
}

func (o *AnalyzeOptions) analyze(ctx context.Context, path string, opts analyze.Options, label string) (*analyze.Result, error) {
	in, err := analyze.OpenInput(path)
	if err != nil {
		return nil, err
	}
	in.ApplyManifest(&opts)
	if o.IO.IsStderrTTY() {
		total := int64(-1)
		if in.Manifest != nil && in.Manifest.TotalSpans() > 0 {
			total = in.Manifest.TotalSpans()
		}
		bar := progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(o.IO.ErrOut),
			progressbar.OptionSetDescription(label+" "+filepath.Base(path)),
			progressbar.OptionSetItsString("spans"),
			progressbar.OptionShowIts(),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		opts.Progress = func(n int64) { _ = bar.Set64(n) }
		defer bar.Finish()
	}
	return analyze.Run(ctx, opts, in.Source())
}

// writeFileAtomic writes a file through a temporary one in the same folder.
func writeFileAtomic(path string, write func(*os.File) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return errors.Join(fmt.Errorf("write %s: %w", path, err))
	}
	return nil
}
