package cli

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"
)

// CaptureOptions are the flags of a cluster capture.
type CaptureOptions struct {
	IO      *Streams
	Factory *Factory

	Duration time.Duration
	Output   string
	DryRun   bool
	Yes      bool
}

// NewCmdCapture returns `trace-capture capture`, which the root command
// also runs.
func NewCmdCapture(f *Factory, runF func(context.Context, *CaptureOptions) error) *cobra.Command {
	opts := &CaptureOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "capture",
		Short: "Switch tracing on in a cluster's core components for a window and collect a bundle",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return opts.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&opts.Duration, "duration", 5*time.Minute, "length of the capture window")
	fl.StringVarP(&opts.Output, "output", "o", "", "bundle to write")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	fl.BoolVar(&opts.Yes, "yes", false, "do not ask for confirmation")
	return cmd
}

// Run runs the cluster capture.
func (o *CaptureOptions) Run(ctx context.Context) error {
	return errors.New("the cluster capture is not available in this build yet: use 'trace-capture record' to capture from components you configure yourself")
}
