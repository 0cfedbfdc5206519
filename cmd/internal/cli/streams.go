package cli

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
)

// Streams are the standard streams a command uses: results go to Out, logs,
// warnings and progress to ErrOut.
type Streams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdoutTTY, stderrTTY, stdinTTY bool
}

// System returns the process's standard streams.
func System() *Streams {
	return &Streams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		stdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
	}
}

// TestStreams returns streams backed by buffers, and the buffers.
func TestStreams() (s *Streams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &Streams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// IsStderrTTY reports whether progress may be drawn on ErrOut.
func (s *Streams) IsStderrTTY() bool { return s.stderrTTY }

// IsStdoutTTY reports whether Out is a terminal.
func (s *Streams) IsStdoutTTY() bool { return s.stdoutTTY }

// CanPrompt reports whether a question can be asked on the terminal.
func (s *Streams) CanPrompt() bool { return s.stdinTTY && s.stderrTTY }

// SetTTY overrides terminal detection (tests).
func (s *Streams) SetTTY(stdin, stdout, stderr bool) {
	s.stdinTTY, s.stdoutTTY, s.stderrTTY = stdin, stdout, stderr
}
