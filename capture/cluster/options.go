package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/trace-capture/trace-capture/capture/agent"
	"github.com/trace-capture/trace-capture/capture/enable"
)

// Defaults of Options.
const (
	DefaultDuration          = 5 * time.Minute
	DefaultAgentTimeout      = 2 * time.Minute
	DefaultEnableTimeout     = 5 * time.Minute
	DefaultRestoreTimeout    = 10 * time.Minute
	DefaultCleanupTimeout    = 3 * time.Minute
	DefaultGrace             = 3 * time.Minute
	DefaultSelfDestructAfter = 30 * time.Minute
	DefaultMaxBytesPerNode   = 1 << 30
	DefaultProgressInterval  = time.Second
	DefaultSilenceWarning    = time.Minute
	DefaultParallel          = 5
	// DefaultSamplingRatePerMillion samples every root span.
	DefaultSamplingRatePerMillion = 1_000_000
	// DefaultAgentBinary is where the agent image holds trace-capture.
	DefaultAgentBinary = "/trace-capture"
)

// Options configures Run. Client and, unless Dialer is set, Config are required; the rest has
// defaults (Complete fills them).
type Options struct {
	// Client talks to the cluster. Dynamic, if set, reads OpenShift's configuration objects.
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// Config is the REST configuration, for port-forwarding to the agents.
	Config *rest.Config
	// Dialer reaches the agents; nil means port-forwarding with Config.
	Dialer Dialer

	// ClusterName names the cluster in the plan and the bundle (the kubeconfig's cluster).
	ClusterName string
	// Components to switch on; empty means all that run.
	Components []enable.Component
	// NodeSelector is a label selector narrowing the nodes; "" means every node.
	NodeSelector string
	// Duration is the capture window.
	Duration time.Duration
	// SamplingRatePerMillion is the components' sampling rate, 0..1,000,000 (the CLI's default is
	// DefaultSamplingRatePerMillion; 0 records only spans whose parent was sampled).
	SamplingRatePerMillion int32
	// Output is the bundle to write.
	Output string
	// DryRun stops after the plan.
	DryRun bool
	// Confirm, if set, is asked once with the plan before anything is created; false stops the run
	// with ErrDeclined.
	Confirm func(ctx context.Context, p *Plan) (bool, error)

	// Image is the agent image (this same trace-capture build); required unless DryRun.
	Image string
	// ImagePullPolicy of the agent; "" means IfNotPresent.
	ImagePullPolicy corev1.PullPolicy
	// AgentCommand is the agent container's command; empty means [DefaultAgentBinary, "agent"].
	AgentCommand []string
	// AgentPort is the agents' loopback control port on the nodes; 0 means agent.DefaultPort.
	AgentPort int
	// ContainerdEnvFile is passed to the agents: the environment file that containerd's supervisor
	// reads on nodes where systemd does not run containerd.
	ContainerdEnvFile string
	// JournalDir is the journal folder on the nodes; "" means journal.DefaultDir.
	JournalDir string
	// MaxBytesPerNode is each agent's span archive budget (never fill a control-plane disk).
	MaxBytesPerNode int64

	// AgentTimeout bounds the wait for the agents to be ready.
	AgentTimeout time.Duration
	// EnableTimeout bounds the enable of one node (restarts and health gates included).
	EnableTimeout time.Duration
	// RestoreTimeout bounds the restore of all nodes.
	RestoreTimeout time.Duration
	// CleanupTimeout bounds the deletion of what the run created.
	CleanupTimeout time.Duration
	// Grace is added to the window for the agents' dead man's switch.
	Grace time.Duration
	// SelfDestructAfter lets an agent whose CLI is gone delete its namespace once nothing is left
	// to undo; negative disables it.
	SelfDestructAfter time.Duration
	// Parallel bounds how many worker nodes are enabled or restored at once (control-plane nodes:
	// always one at a time).
	Parallel int

	// Progress, if set, is called about every ProgressInterval during the window and at each step.
	Progress         func(Progress)
	ProgressInterval time.Duration
	// SilenceWarning is how long an enabled component may send nothing before a warning.
	SilenceWarning time.Duration

	// Abandon is closed on a second interrupt: the run stops waiting for the restore and returns a
	// *RestoreIncompleteError with the recovery command.
	Abandon <-chan struct{}
	// RestoreCommand is the command a person runs to finish a restore, without the run flag; empty
	// means ["trace-capture", "restore"]. The CLI adds its kubeconfig flags (--context, ...).
	RestoreCommand []string

	// ToolVersion goes into the bundle's manifest.
	ToolVersion string
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// readyz, in tests, replaces the API server's /readyz check.
	readyz func(ctx context.Context) error

	_ struct{}
}

// ErrDeclined is returned when Confirm says no.
var ErrDeclined = errors.New("capture declined: nothing was changed")

// Complete fills the defaults and checks the options.
func (o *Options) Complete() error {
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.ImagePullPolicy == "" {
		o.ImagePullPolicy = corev1.PullIfNotPresent
	}
	if len(o.AgentCommand) == 0 {
		o.AgentCommand = []string{DefaultAgentBinary, "agent"}
	}
	if o.AgentPort == 0 {
		o.AgentPort = agent.DefaultPort
	}
	if o.MaxBytesPerNode == 0 {
		o.MaxBytesPerNode = DefaultMaxBytesPerNode
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.AgentTimeout, DefaultAgentTimeout)
	def(&o.EnableTimeout, DefaultEnableTimeout)
	def(&o.RestoreTimeout, DefaultRestoreTimeout)
	def(&o.CleanupTimeout, DefaultCleanupTimeout)
	def(&o.Grace, DefaultGrace)
	def(&o.SelfDestructAfter, DefaultSelfDestructAfter)
	def(&o.ProgressInterval, DefaultProgressInterval)
	def(&o.SilenceWarning, DefaultSilenceWarning)
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if len(o.RestoreCommand) == 0 {
		o.RestoreCommand = []string{"trace-capture", "restore"}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o.Validate()
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Client == nil {
		errs = append(errs, errors.New("no Kubernetes client"))
	}
	if o.Duration < 0 {
		errs = append(errs, fmt.Errorf("the window %s is negative", o.Duration))
	}
	if o.SamplingRatePerMillion < 0 || o.SamplingRatePerMillion > 1_000_000 {
		errs = append(errs, fmt.Errorf("sampling rate %d per million is outside 0..1000000", o.SamplingRatePerMillion))
	}
	if o.NodeSelector != "" {
		if _, err := labels.Parse(o.NodeSelector); err != nil {
			errs = append(errs, fmt.Errorf("node selector %q: %w", o.NodeSelector, err))
		}
	}
	seen := map[enable.Component]bool{}
	for _, c := range o.Components {
		if _, err := enable.ParseComponent(string(c)); err != nil {
			errs = append(errs, err)
		}
		if seen[c] {
			errs = append(errs, fmt.Errorf("component %s named twice", c))
		}
		seen[c] = true
	}
	if !o.DryRun {
		if o.Image == "" {
			errs = append(errs, errors.New("no agent image"))
		}
		if o.Output == "" {
			errs = append(errs, errors.New("no output path"))
		}
		if o.Config == nil && o.Dialer == nil {
			errs = append(errs, errors.New("no REST configuration to reach the agents"))
		}
	}
	if o.AgentPort < 1 || o.AgentPort > 65535 {
		errs = append(errs, fmt.Errorf("agent port %d is not a port", o.AgentPort))
	}
	if o.MaxBytesPerNode < 0 {
		errs = append(errs, errors.New("the per-node byte budget is negative"))
	}
	return errors.Join(errs...)
}

// DefaultOutput is the bundle's default name: "trace-capture-<cluster>-<UTC time>.tgz" (the
// cluster name reduced to letters, digits, '-', '_' and '.').
func DefaultOutput(cluster string, t time.Time) string {
	name := safeName(cluster)
	if cluster == "" {
		name = "cluster"
	}
	return "trace-capture-" + name + "-" + t.UTC().Format("20060102T150405Z") + ".tgz"
}

// ParseComponents parses a comma-separated component list ("apiserver,etcd,kubelet").
func ParseComponents(s string) ([]enable.Component, error) {
	var out []enable.Component
	for _, f := range strings.Split(s, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		c, err := enable.ParseComponent(f)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (o *Options) wants(c enable.Component) bool {
	if len(o.Components) == 0 {
		return true
	}
	for _, x := range o.Components {
		if x == c {
			return true
		}
	}
	return false
}

// RestoreIncompleteError is returned when a run ends without every change verified as undone:
// the restore was abandoned (second interrupt), an agent could not be reached, or a file could
// not be put back. Command finishes the job.
type RestoreIncompleteError struct {
	RunID string
	// Nodes are the nodes not verified as restored.
	Nodes []string
	// Command is the exact command to run ("trace-capture restore --run-id ...").
	Command string
	Err     error
}

func (e *RestoreIncompleteError) Error() string {
	return fmt.Sprintf("the cluster is not fully restored (run %s, nodes %s): %v", e.RunID, strings.Join(e.Nodes, ", "), e.Err)
}

func (e *RestoreIncompleteError) Unwrap() error { return e.Err }

func (o *Options) recoveryCommand(runID string) string {
	parts := append([]string(nil), o.RestoreCommand...)
	parts = append(parts, "--run-id", runID)
	for i, p := range parts {
		if p == "" || strings.ContainsAny(p, " \t\"'$\\`;&|<>*?()[]{}!#~") {
			parts[i] = "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
		}
	}
	return strings.Join(parts, " ")
}
