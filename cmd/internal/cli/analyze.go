package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
)

// AnalyzeOptions are the flags of `trace-capture analyze`.
type AnalyzeOptions struct {
	IO      *Streams
	Factory *Factory
}

// NewCmdAnalyze returns `trace-capture analyze`.
func NewCmdAnalyze(f *Factory, runF func(context.Context, *AnalyzeOptions) error) *cobra.Command {
	_ = &AnalyzeOptions{IO: f.IO, Factory: f}
	return &cobra.Command{
		Use:   "analyze BUNDLE",
		Short: "Analyse a bundle offline and write HTML and JSON reports",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("analyze: not wired yet")
		},
	}
}
