package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Exit codes: the one table. Commands' help texts refer to it.
const (
	ExitOK = 0
	// ExitError is any failure not listed below.
	ExitError = 1
	// ExitUsage is a bad command line.
	ExitUsage = 2
	// ExitRestoreIncomplete means the capture ran but the cluster was not
	// fully restored: run the printed `trace-capture restore` command.
	ExitRestoreIncomplete = 3
	// ExitInterrupted means the user interrupted before there was a
	// result.
	ExitInterrupted = 130
)

const exitStatusHelp = `
EXIT STATUS
  0    success
  1    failure
  2    bad command line
  3    captured, but the cluster was not fully restored: run the printed
       'trace-capture restore' command
  130  interrupted before a result was written`

// FlagError is a bad command line; it is the only error that prints usage.
type FlagError struct{ err error }

func (e *FlagError) Error() string { return e.err.Error() }
func (e *FlagError) Unwrap() error { return e.err }

// flagErrorf returns a FlagError.
func flagErrorf(format string, args ...any) error {
	return &FlagError{err: fmt.Errorf(format, args...)}
}

// RecoveryError carries the command that finishes an interrupted restore.
type RecoveryError struct {
	Err     error
	Command string
}

func (e *RecoveryError) Error() string { return e.Err.Error() }
func (e *RecoveryError) Unwrap() error { return e.Err }

// exitCode maps an error to the exit code and prints it for a person.
func exitCode(err error, errOut io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var fe *FlagError
	var re *RecoveryError
	switch {
	case errors.As(err, &re):
		fmt.Fprintf(errOut, "error: %v\nto finish restoring the cluster, run:\n  %s\n", err, re.Command)
		return ExitRestoreIncomplete
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(errOut, "interrupted")
		return ExitInterrupted
	case errors.As(err, &fe):
		fmt.Fprintf(errOut, "error: %v\n", err)
		return ExitUsage
	default:
		fmt.Fprintf(errOut, "error: %v\n", err)
		return ExitError
	}
}
