package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/trace-capture/trace-capture/capture/probe"
	"github.com/trace-capture/trace-capture/receiver"
)

// ProbeOptions are the flags of `trace-capture probe`.
type ProbeOptions struct {
	IO      *Streams
	Factory *Factory

	Duration     time.Duration
	Rate         float64
	RequestsFile string
	GRPCAddr     string
	Output       string
}

// NewCmdProbe returns `trace-capture probe`.
func NewCmdProbe(f *Factory, runF func(context.Context, *ProbeOptions) error) *cobra.Command {
	opts := &ProbeOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Get full kube-apiserver and etcd traces of probe requests, without restarting anything",
		Long: `Send a mix of requests to kube-apiserver, each with a sampled W3C traceparent,
and record the traces that kube-apiserver and etcd export for them.

Since Kubernetes 1.33 kube-apiserver continues the sampled trace of callers in
system:masters or system:monitoring, and etcd follows a sampled parent even at
sampling rate 0. So when both are configured to trace at rate 0 (no overhead,
nothing exported) towards this receiver (--otlp-grpc), or towards the capture's
agent, the probe gets complete apiserver -> etcd traces on demand. It checks the
apiserver's version and your groups first and says why not when it cannot.

The mix (--requests, a JSON list) has reads and lists of any API path and
create/patch/delete of a scratch ConfigMap, in a namespace the probe creates
and always deletes. The bundle is like any other ('trace-capture analyze');
its probe/requests.json lists each request's trace id, verb, path and status.
` + exitStatusHelp,
		Example: `  # ten seconds of the default mix at 5 requests/s
  trace-capture probe -o probe.tgz

  # your own mix, for a minute
  echo '[{"verb":"list","path":"/api/v1/pods?limit=500"},{"verb":"create"},{"verb":"delete"}]' > mix.json
  trace-capture probe --requests mix.json --duration 1m --rate 2`,
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
	fl.DurationVar(&opts.Duration, "duration", probe.DefaultDuration, "how long to send requests")
	fl.Float64Var(&opts.Rate, "rate", probe.DefaultRate, "requests per second")
	fl.StringVar(&opts.RequestsFile, "requests", "", "JSON list of {verb, path} to send round-robin (default: a built-in mix)")
	fl.StringVar(&opts.GRPCAddr, "otlp-grpc", receiver.DefaultGRPCAddr, "OTLP/gRPC listen address the components export to")
	fl.StringVarP(&opts.Output, "output", "o", "", "bundle to write (default trace-capture-probe-<time>.tgz)")
	addKubeFlags(cmd, f)
	return cmd
}

// Validate checks the flags.
func (o *ProbeOptions) Validate() error {
	if o.Duration <= 0 {
		return flagErrorf("`--duration` must be positive")
	}
	if o.Rate <= 0 || o.Rate > 1000 {
		return flagErrorf("`--rate` must be in (0, 1000]")
	}
	if o.GRPCAddr == "" {
		return flagErrorf("`--otlp-grpc` must be set: the components export to it")
	}
	if err := (receiver.Config{GRPCAddr: o.GRPCAddr}).Validate(); err != nil {
		return flagErrorf("bad `--otlp-grpc` address: %v", err)
	}
	return nil
}

// Run probes and prints the summary.
func (o *ProbeOptions) Run(ctx context.Context) error {
	var reqs []probe.Request
	if o.RequestsFile != "" {
		f, err := os.Open(o.RequestsFile)
		if err != nil {
			return fmt.Errorf("open requests: %w", err)
		}
		reqs, err = probe.ReadRequests(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	kc, err := o.Factory.kubeClients()
	if err != nil {
		return err
	}
	out := o.Output
	if out == "" {
		out = "trace-capture-probe-" + o.Factory.Now().UTC().Format("20060102T150405Z") + ".tgz"
	}
	res, err := probe.Run(ctx, probe.Options{
		Config:      kc.config,
		Duration:    o.Duration,
		Rate:        o.Rate,
		Requests:    reqs,
		Receiver:    receiver.Config{GRPCAddr: o.GRPCAddr},
		Output:      out,
		ToolVersion: o.Factory.Version,
		Logger:      o.Factory.Logger(),
		OnListening: func(a receiver.Addrs) {
			fmt.Fprintf(o.IO.ErrOut, "probing for %s at %g requests/s; receiving OTLP/gRPC on %s\n", o.Duration, o.Rate, a.GRPC)
		},
	})
	if res != nil && res.Manifest != nil {
		if perr := printProbeSummary(o.IO.Out, res); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

func printProbeSummary(w io.Writer, res *probe.Result) error {
	pf := res.Preflight
	fmt.Fprintf(w, "bundle:   %s (%s)\n", res.Output, humanBytes(res.Bytes))
	fmt.Fprintf(w, "caller:   %s on kube-apiserver %s\n", pf.User, pf.APIServerVersion)
	failed := 0
	for _, r := range res.Requests {
		if r.Status == 0 || r.Status >= 400 {
			failed++
		}
	}
	fmt.Fprintf(w, "requests: %d sent (%d failed or unanswered), %d traces came back\n", len(res.Requests), failed, res.TracesSeen)
	for _, part := range []struct {
		label string
		m     map[string]int64
	}{{"probe spans", res.ProbeSpans}, {"other spans", res.OtherSpans}} {
		names := make([]string, 0, len(part.m))
		for n := range part.m {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			name := n
			if name == "" {
				name = "(no service.name)"
			}
			fmt.Fprintf(w, "  %-12s %-28s %8d\n", part.label, name, part.m[n])
		}
	}
	if res.TracesSeen == 0 {
		fmt.Fprintf(w, "note:     no trace came back: are kube-apiserver and etcd configured (at rate 0) to export to %s?\n", res.Addrs.GRPC)
	}
	_, err := fmt.Fprintf(w, "next:     trace-capture analyze %s\n", res.Output)
	return err
}
