package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Main runs the command line and returns the exit code. The first SIGINT
// or SIGTERM cancels the command's context (a capture then stops its window
// and restores); a second closes Factory.Abandon.
func Main(args []string, streams *Streams, version string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	abandon := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		n := 0
		for sig := range sigs {
			n++
			switch n {
			case 1:
				fmt.Fprintf(streams.ErrOut, "\n%v received: finishing (press Ctrl-C again to abandon)\n", sig)
				cancel()
			case 2:
				close(abandon)
				return
			}
		}
	}()
	f := NewFactory(streams, version, abandon)
	root := NewCmdRoot(f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return exitCode(err, streams.ErrOut)
}

// NewCmdRoot returns the root command: `trace-capture [flags]` runs a
// cluster capture; the subcommands do the rest.
func NewCmdRoot(f *Factory) *cobra.Command {
	root := NewCmdCapture(f, nil)
	root.Use = "trace-capture"
	root.Short = "Capture OpenTelemetry traces of a Kubernetes control plane and analyse them offline"
	root.Long = `trace-capture switches OpenTelemetry tracing on in a cluster's core components
(kube-apiserver, etcd, kubelet, CRI-O, containerd) for a timed window, records
their spans, restores every configuration exactly, and leaves one bundle.tgz.
'trace-capture analyze bundle.tgz' then finds the slow cross-component paths,
offline, and writes an HTML and a JSON report.

Without a subcommand it runs a cluster capture (see 'trace-capture capture --help').
` + exitStatusHelp
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.PersistentFlags().CountVarP(&f.verbosity, "verbose", "v", "log more: -v for progress steps, -vv for debugging")
	root.PersistentFlags().StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text or json")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &FlagError{err: fmt.Errorf("%w\nsee '%s --help'", err, cmd.CommandPath())}
	})

	capture := NewCmdCapture(f, nil)
	root.AddCommand(
		capture,
		NewCmdRecord(f, nil),
		NewCmdProbe(f, nil),
		NewCmdImport(f, nil),
		NewCmdExport(f, nil),
		NewCmdAnalyze(f, nil),
		NewCmdRedact(f, nil),
		NewCmdRestore(f, nil),
		NewCmdAgent(f, nil),
		NewCmdVersion(f),
	)
	return root
}

// NewCmdVersion prints the version.
func NewCmdVersion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(f.IO.Out, "trace-capture %s\n", f.Version)
			return err
		},
	}
}
