package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/trace-capture/trace-capture/capture/cluster"
)

// RestoreOptions are the flags of `trace-capture restore`.
type RestoreOptions struct {
	IO      *Streams
	Factory *Factory

	RunID             string
	Force             bool
	Image             string
	ImagePullPolicy   string
	AgentTimeout      time.Duration
	RestoreTimeout    time.Duration
	CleanupTimeout    time.Duration
	JournalDir        string
	ContainerdEnvFile string

	restoreCommand []string
}

// NewCmdRestore returns `trace-capture restore`.
func NewCmdRestore(f *Factory, runF func(context.Context, *RestoreOptions) error) *cobra.Command {
	opts := &RestoreOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Finish restoring a cluster after an interrupted capture",
		Long: `Undo what an interrupted capture changed, from any machine with a kubeconfig.

Every node that a capture changed carries an annotation pointing at the
journal on that node, written before the change. restore deletes leftover run
namespaces (their agents restore their nodes as they stop), then starts an
agent on every node whose journal is still referenced; it puts every file
back byte for byte, restarts the components, verifies, and removes the
annotation. It is idempotent: with nothing left to undo it does nothing.
See docs/recovery.md.
` + exitStatusHelp,
		Example: `  trace-capture restore
  trace-capture restore --run-id tc-20261125-120000-ab12 --image registry.example.com/trace-capture:v1`,
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
	fl.StringVar(&opts.RunID, "run-id", "", "restore only this run (default: every run)")
	fl.BoolVar(&opts.Force, "force", false, "write originals back even over files someone changed since the run")
	fl.StringVar(&opts.Image, "image", "", "agent image, needed when a node still holds a journal")
	fl.StringVar(&opts.ImagePullPolicy, "image-pull-policy", string(corev1.PullIfNotPresent), "agent image pull policy")
	fl.DurationVar(&opts.AgentTimeout, "agent-timeout", cluster.DefaultAgentTimeout, "how long agents may take to be ready")
	fl.DurationVar(&opts.RestoreTimeout, "restore-timeout", cluster.DefaultRestoreTimeout, "bound of the restore")
	fl.DurationVar(&opts.CleanupTimeout, "cleanup-timeout", cluster.DefaultCleanupTimeout, "bound of the deletion of leftovers")
	fl.StringVar(&opts.JournalDir, "journal-dir", "", "journal folder on the nodes (default /var/lib/trace-capture/journal)")
	fl.StringVar(&opts.ContainerdEnvFile, "containerd-env-file", "", "environment file containerd's supervisor reads, where systemd does not run containerd")
	addKubeFlags(cmd, f)
	return cmd
}

// Run restores.
func (o *RestoreOptions) Run(ctx context.Context) error {
	kc, err := o.Factory.kubeClients()
	if err != nil {
		return err
	}
	prog := newClusterProgress(o.IO)
	res, err := cluster.Restore(ctx, cluster.RestoreOptions{
		Client: kc.client, Config: kc.config, RunID: o.RunID, Force: o.Force,
		Image: o.Image, ImagePullPolicy: corev1.PullPolicy(o.ImagePullPolicy), JournalDir: o.JournalDir, ContainerdEnvFile: o.ContainerdEnvFile,
		AgentTimeout: o.AgentTimeout, RestoreTimeout: o.RestoreTimeout, CleanupTimeout: o.CleanupTimeout,
		RestoreCommand: o.restoreCommand, Progress: prog.update, Abandon: o.Factory.Abandon,
		Logger: o.Factory.Logger(), Now: o.Factory.Now,
	})
	prog.finish()
	var rie *cluster.RestoreIncompleteError
	if errors.As(err, &rie) {
		return &RecoveryError{Err: err, Command: rie.Command}
	}
	if err != nil {
		return err
	}
	if len(res.Namespaces) == 0 && len(res.Nodes) == 0 {
		_, err := fmt.Fprintln(o.IO.Out, "nothing to restore")
		return err
	}
	for _, ns := range res.Namespaces {
		fmt.Fprintf(o.IO.Out, "deleted leftover namespace %s\n", ns)
	}
	for _, n := range res.Nodes {
		fmt.Fprintf(o.IO.Out, "restored node %s\n", n.Node)
	}
	return nil
}
