package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/trace-capture/trace-capture/capture/cluster"
)

// CaptureOptions are the flags of a cluster capture.
type CaptureOptions struct {
	IO      *Streams
	Factory *Factory

	Duration          time.Duration
	Output            string
	DryRun            bool
	Yes               bool
	Components        string
	Nodes             string
	SamplingRate      int32
	Image             string
	ImagePullPolicy   string
	AgentTimeout      time.Duration
	EnableTimeout     time.Duration
	RestoreTimeout    time.Duration
	CleanupTimeout    time.Duration
	Grace             time.Duration
	MaxBytesPerNode   int64
	ContainerdEnvFile string
	JournalDir        string
	Parallel          int
	SilenceWarning    time.Duration
	SelfDestructAfter time.Duration
	AgentPort         int
	Redact            bool
	RedactOptions     RedactOptions

	restoreCommand []string
}

// NewCmdCapture returns `trace-capture capture`, which the root command
// also runs.
func NewCmdCapture(f *Factory, runF func(context.Context, *CaptureOptions) error) *cobra.Command {
	opts := &CaptureOptions{IO: f.IO, Factory: f}
	opts.RedactOptions.IO = f.IO
	cmd := &cobra.Command{
		Use:   "capture",
		Short: "Switch tracing on in a cluster's core components for a window and collect a bundle",
		Long: `Capture the OpenTelemetry traces of a cluster's core components for a window.

1. Preflight: the cluster's flavour (kubeadm-style static pods, OpenShift,
   managed), its nodes, each component's version, whether tracing is already
   on (then it is left alone), and your permissions. The plan lists every file
   that will change, on which node, and which component restarts.
   --dry-run stops here (--dry-run -o json prints the plan as JSON).
2. A short-lived namespace with one agent per node (this same binary as
   'trace-capture agent', a privileged host-network DaemonSet) receives OTLP on
   the node's loopback; the CLI reaches it through port-forwarding only.
3. Each agent journals the original of every file, then switches tracing on,
   one control-plane node at a time, waiting for health before the next.
4. The window: progress per component and node, warnings for silence.
5. Restore on every exit path (end of window, Ctrl-C, an error): every file
   back byte for byte, components restarted, verified. A second Ctrl-C
   abandons the restore and prints the command that finishes it; if the CLI
   vanishes, each agent restores its node on its own after the window and
   --grace.
6. The spans, agents' logs, cluster facts and the window's Events go into one
   bundle; the namespace and everything created is deleted.

See docs/cluster-capture.md, docs/rbac.md, docs/recovery.md, docs/openshift.md.
` + exitStatusHelp,
		Example: `  trace-capture --duration 5m --image registry.example.com/trace-capture:v1
  trace-capture --dry-run -o json
  trace-capture --components apiserver,etcd --nodes node-role.kubernetes.io/control-plane= --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.restoreCommand = append([]string{"trace-capture", "restore"}, kubeFlagArgs(cmd)...)
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return opts.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&opts.Duration, "duration", cluster.DefaultDuration, "length of the capture window")
	fl.StringVarP(&opts.Output, "output", "o", "", "bundle to write (default trace-capture-<cluster>-<time>.tgz); with --dry-run: text or json")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	fl.BoolVar(&opts.Yes, "yes", false, "do not ask for confirmation")
	fl.StringVar(&opts.Components, "components", "", "components to trace, comma-separated: apiserver,etcd,kubelet,crio,containerd (default: all that run)")
	fl.StringVar(&opts.Nodes, "nodes", "", "label selector of the nodes to trace (default: all)")
	fl.Int32Var(&opts.SamplingRate, "sampling-rate-per-million", cluster.DefaultSamplingRatePerMillion, "sampling rate, 0..1000000 (0 keeps only spans whose caller sampled)")
	fl.StringVar(&opts.Image, "image", "", "agent image: this trace-capture build (see 'make image')")
	fl.StringVar(&opts.ImagePullPolicy, "image-pull-policy", string(corev1.PullIfNotPresent), "agent image pull policy: Always, IfNotPresent or Never")
	fl.DurationVar(&opts.AgentTimeout, "agent-timeout", cluster.DefaultAgentTimeout, "how long agents may take to be ready")
	fl.DurationVar(&opts.EnableTimeout, "enable-timeout", cluster.DefaultEnableTimeout, "bound of one node's enable, restarts and health gates included")
	fl.DurationVar(&opts.RestoreTimeout, "restore-timeout", cluster.DefaultRestoreTimeout, "bound of the restore of all nodes")
	fl.DurationVar(&opts.CleanupTimeout, "cleanup-timeout", cluster.DefaultCleanupTimeout, "bound of the deletion of what the run created")
	fl.DurationVar(&opts.Grace, "grace", cluster.DefaultGrace, "added to the window for the agents' dead man's switch")
	fl.Int64Var(&opts.MaxBytesPerNode, "max-bytes-per-node", cluster.DefaultMaxBytesPerNode, "span archive budget per node; past it spans are refused and counted")
	fl.StringVar(&opts.ContainerdEnvFile, "containerd-env-file", "", "environment file containerd's supervisor reads, where systemd does not run containerd")
	fl.StringVar(&opts.JournalDir, "journal-dir", "", "journal folder on the nodes (default /var/lib/trace-capture/journal)")
	fl.IntVar(&opts.Parallel, "parallel", cluster.DefaultParallel, "worker nodes enabled or restored at once (control-plane nodes: one at a time)")
	fl.DurationVar(&opts.SilenceWarning, "silence-warning", cluster.DefaultSilenceWarning, "warn when an enabled component sends nothing for this long")
	fl.DurationVar(&opts.SelfDestructAfter, "self-destruct-after", cluster.DefaultSelfDestructAfter, "an agent whose CLI is gone deletes its namespace after this, once nothing is left to undo; negative disables")
	fl.IntVar(&opts.AgentPort, "agent-port", 0, "agents' loopback control port on the nodes (default 47317)")
	fl.BoolVar(&opts.Redact, "redact", false, "pseudonymise the bundle before it is written (see 'trace-capture redact --help')")
	opts.RedactOptions.addFlags(cmd)
	addKubeFlags(cmd, f)
	return cmd
}

func (o *CaptureOptions) clusterOptions() (cluster.Options, error) {
	comps, err := cluster.ParseComponents(o.Components)
	if err != nil {
		return cluster.Options{}, flagErrorf("bad `--components`: %v", err)
	}
	co := cluster.Options{
		Components: comps, NodeSelector: o.Nodes, Duration: o.Duration, SamplingRatePerMillion: o.SamplingRate,
		Output: o.Output, DryRun: o.DryRun, Image: o.Image, ImagePullPolicy: corev1.PullPolicy(o.ImagePullPolicy),
		AgentPort: o.AgentPort, ContainerdEnvFile: o.ContainerdEnvFile, JournalDir: o.JournalDir, MaxBytesPerNode: o.MaxBytesPerNode,
		AgentTimeout: o.AgentTimeout, EnableTimeout: o.EnableTimeout, RestoreTimeout: o.RestoreTimeout, CleanupTimeout: o.CleanupTimeout,
		Grace: o.Grace, SelfDestructAfter: o.SelfDestructAfter, Parallel: o.Parallel, SilenceWarning: o.SilenceWarning,
		Abandon: o.Factory.Abandon, RestoreCommand: o.restoreCommand, ToolVersion: o.Factory.Version,
		Logger: o.Factory.Logger(), Now: o.Factory.Now,
	}
	if o.DryRun {
		co.Output = ""
	}
	return co, nil
}

// Validate checks the flags that need no cluster.
func (o *CaptureOptions) Validate() error {
	if o.Duration <= 0 {
		return flagErrorf("`--duration` must be positive")
	}
	if o.SamplingRate < 0 || o.SamplingRate > 1_000_000 {
		return flagErrorf("`--sampling-rate-per-million` must be within 0..1000000")
	}
	switch corev1.PullPolicy(o.ImagePullPolicy) {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return flagErrorf("`--image-pull-policy` must be Always, IfNotPresent or Never")
	}
	if o.DryRun && o.Output != "" && o.Output != "json" && o.Output != "text" {
		return flagErrorf("with `--dry-run`, `-o` is the plan's format: text or json")
	}
	if !o.DryRun && o.Image == "" {
		return flagErrorf("`--image` is required: the agents run this trace-capture build as an image in your cluster's registry (see docs/cluster-capture.md)")
	}
	return nil
}

// Run runs the cluster capture.
func (o *CaptureOptions) Run(ctx context.Context) error {
	if err := o.Validate(); err != nil {
		return err
	}
	co, err := o.clusterOptions()
	if err != nil {
		return err
	}
	kc, err := o.Factory.kubeClients()
	if err != nil {
		return err
	}
	co.Client, co.Dynamic, co.Config, co.ClusterName = kc.client, kc.dynamic, kc.config, kc.clusterName
	if !o.DryRun {
		if co.Output == "" {
			co.Output = cluster.DefaultOutput(kc.clusterName, o.Factory.Now())
		}
		if !o.Yes {
			if !o.IO.CanPrompt() {
				return flagErrorf("not a terminal: review the plan with `--dry-run`, then run again with `--yes`")
			}
			co.Confirm = o.confirm
		}
	}
	prog := newClusterProgress(o.IO)
	co.Progress = prog.update
	res, err := cluster.Run(ctx, co)
	prog.finish()
	if o.DryRun && res != nil && res.Plan != nil {
		if o.Output == "json" {
			return errors.Join(err, res.Plan.WriteJSON(o.IO.Out))
		}
		return errors.Join(err, res.Plan.WriteText(o.IO.Out))
	}
	var rie *cluster.RestoreIncompleteError
	if errors.As(err, &rie) {
		return &RecoveryError{Err: err, Command: rie.Command}
	}
	if err != nil {
		return err
	}
	if o.Redact {
		if err := o.RedactOptions.redactInPlace(context.WithoutCancel(ctx), res.Output); err != nil {
			return err
		}
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(o.IO.ErrOut, "warning:", w)
	}
	fmt.Fprintf(o.IO.Out, "bundle: %s (%s)\n", res.Output, humanBytes(res.Bytes))
	if res.Manifest != nil {
		fmt.Fprintf(o.IO.Out, "spans:  %d received, %d dropped\n", res.Manifest.TotalSpans(), res.Manifest.TotalDropped())
	}
	if res.Interrupted {
		fmt.Fprintln(o.IO.Out, "note:   interrupted before the end of the window; the cluster was restored")
	}
	fmt.Fprintf(o.IO.Out, "next:   trace-capture analyze %s\n", res.Output)
	return nil
}

func (o *CaptureOptions) confirm(ctx context.Context, p *cluster.Plan) (bool, error) {
	if err := p.WriteText(o.IO.ErrOut); err != nil {
		return false, err
	}
	fmt.Fprint(o.IO.ErrOut, "\nApply this plan, restart these components, and restore them after the window? [y/N] ")
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(o.IO.In).ReadString('\n')
		answer <- strings.TrimSpace(strings.ToLower(line))
	}()
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case a := <-answer:
		return a == "y" || a == "yes", nil
	}
}

// clusterProgress shows the cluster capture's progress on a terminal's
// stderr, and its steps and warnings as log lines elsewhere.
type clusterProgress struct {
	io   *Streams
	bar  *progressbar.ProgressBar
	last cluster.Step
	seen map[string]bool
}

func newClusterProgress(s *Streams) *clusterProgress {
	return &clusterProgress{io: s, seen: map[string]bool{}}
}

func (p *clusterProgress) update(pr cluster.Progress) {
	if pr.Step != p.last {
		p.finish()
		p.last = pr.Step
		msg := string(pr.Step)
		if pr.Message != "" {
			msg += ": " + pr.Message
		}
		fmt.Fprintln(p.io.ErrOut, msg)
	}
	for _, w := range pr.Warnings {
		if !p.seen[w] {
			p.seen[w] = true
			fmt.Fprintln(p.io.ErrOut, "warning:", w)
		}
	}
	if !p.io.IsStderrTTY() || (pr.Elapsed == 0 && pr.Remaining == 0) {
		return
	}
	if p.bar == nil {
		total := int64((pr.Elapsed + pr.Remaining) / time.Second)
		p.bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(p.io.ErrOut), progressbar.OptionSetWidth(24),
			progressbar.OptionShowDescriptionAtLineEnd(), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	desc := fmt.Sprintf("%d spans (%.0f/s), %s, %s left", pr.Spans, pr.SpansPerSecond, humanBytes(pr.Bytes), pr.Remaining.Round(time.Second))
	if pr.DroppedSpans > 0 {
		desc += fmt.Sprintf(", %d DROPPED", pr.DroppedSpans)
	}
	p.bar.Describe(desc)
	_ = p.bar.Set64(int64(pr.Elapsed / time.Second))
}

func (p *clusterProgress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}
