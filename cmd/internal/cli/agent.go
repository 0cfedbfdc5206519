package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/trace-capture/trace-capture/capture/agent"
)

// AgentOptions are the flags of `trace-capture agent`.
type AgentOptions struct {
	Factory *Factory
	Options agent.Options
}

// NewCmdAgent returns `trace-capture agent`, the node side of a cluster
// capture. The capture's DaemonSet runs it; people do not.
func NewCmdAgent(f *Factory, runF func(context.Context, *AgentOptions) error) *cobra.Command {
	opts := &AgentOptions{Factory: f}
	o := &opts.Options
	cmd := &cobra.Command{
		Use:    "agent",
		Short:  "Run the node agent of a cluster capture (started by the capture's DaemonSet)",
		Hidden: true,
		Long: `The node side of a cluster capture: receives OTLP on the node's loopback,
writes the node's span archive, switches tracing on in the node's components
when the CLI asks (journal first), restores them when asked, when its deadline
passes without word from the CLI, when it is stopped, and, on start, from any
journal a previous agent left. Its control API listens on loopback only.
` + exitStatusHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return opts.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.NodeName, "node-name", "", "the node the agent runs on")
	fl.StringVar(&o.Namespace, "namespace", "", "the run's namespace (for self-destruct)")
	fl.StringVar(&o.HostRoot, "host-root", "/host", "where the node's root file system is mounted")
	fl.StringVar(&o.ProcRoot, "proc-root", "", "the node's proc file system (default HOST-ROOT/proc)")
	fl.StringVar(&o.JournalDir, "journal-dir", "", "journal folder on the node (default /var/lib/trace-capture/journal)")
	fl.StringVar(&o.WorkDir, "work-dir", "/var/run/trace-capture", "folder for the span archive and the agent's log")
	fl.StringVar(&o.Listen, "listen", "", "control API address, loopback only (default 127.0.0.1:47317)")
	fl.Int64Var(&o.MaxBytes, "max-bytes", 1<<30, "span archive budget")
	fl.IntVar(&o.MaxRequestBytes, "max-request-bytes", 0, "largest OTLP request accepted (default 64 MiB)")
	fl.StringVar(&o.ContainerdEnvFile, "containerd-env-file", "", "environment file containerd's supervisor reads")
	fl.DurationVar(&o.RestartTimeout, "restart-timeout", 0, "bound of one component restart (default 3m)")
	fl.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 0, "bound of the restore when the agent is stopped (default 4m)")
	fl.DurationVar(&o.SelfDestructAfter, "self-destruct-after", 30*time.Minute, "delete the run's namespace after this long without word from the CLI, once nothing is left to undo; negative disables")
	return cmd
}

// Run runs the agent until ctx ends (SIGTERM: it restores, then exits).
func (o *AgentOptions) Run(ctx context.Context) error {
	o.Options.Logger = o.Factory.Logger()
	if o.Options.SelfDestructAfter > 0 {
		// In a pod, the service account may delete its own namespace; out
		// of a cluster there is nothing to clean up.
		if cfg, err := rest.InClusterConfig(); err == nil {
			if c, err := kubernetes.NewForConfig(cfg); err == nil {
				o.Options.Client = c
			}
		}
	} else {
		o.Options.SelfDestructAfter = 0
	}
	return agent.Run(ctx, o.Options)
}
