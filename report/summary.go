package report

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/trace-capture/trace-capture/analyze"
)

// SummaryOptions configures WriteSummary.
type SummaryOptions struct {
	// Rows bounds each list (default 5).
	Rows int
}

// WriteSummary writes the short terminal summary of a result: headline
// counts, the slowest edges and paths, the slowest traces and the
// warnings, as plain text.
func WriteSummary(w io.Writer, r *analyze.Result, opts SummaryOptions) error {
	if r == nil {
		return errors.New("write summary: nil result")
	}
	rows := opts.Rows
	if rows <= 0 {
		rows = 5
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	s := r.Summary
	fmt.Fprintf(tw, "%d spans in %d traces from %d services over %s", s.Spans, s.Traces, s.Services, fmtMs(s.Window.DurationMs))
	if s.OrphanSpans > 0 {
		fmt.Fprintf(tw, ", %d orphan spans", s.OrphanSpans)
	}
	if s.ErrorSpans > 0 {
		fmt.Fprintf(tw, ", %d errors", s.ErrorSpans)
	}
	fmt.Fprintln(tw)

	if len(r.Edges) > 0 {
		fmt.Fprintln(tw, "\nCross-component edges (client → server)\tcalls\tclient p50 / p99\tserver p50 / p99\tgap p99")
		for i, e := range r.Edges {
			if i == rows {
				break
			}
			fmt.Fprintf(tw, "  %s → %s\t%d\t%s / %s\t%s / %s\t%s\n", termSafe(e.ClientService), termSafe(e.ServerService), e.Calls,
				fmtMs(e.ClientMs.P50), fmtMs(e.ClientMs.P99), fmtMs(e.ServerMs.P50), fmtMs(e.ServerMs.P99), fmtMs(e.GapMs.P99))
		}
	}
	if len(r.SlowPaths) > 0 {
		fmt.Fprintln(tw, "\nSlow paths (root → bottleneck)\ttraces\tp50 / p99\ttotal")
		for i, p := range r.SlowPaths {
			if i == rows {
				break
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s / %s\t%s\n", termSafe(shortPath(p.Path)), p.Traces, fmtMs(p.Ms.P50), fmtMs(p.Ms.P99), fmtMs(p.MsTotal))
		}
	}
	if len(r.SlowTraces) > 0 {
		fmt.Fprintln(tw, "\nSlowest traces\tduration\tspans\tbottleneck")
		for i, t := range r.SlowTraces {
			if i == rows {
				break
			}
			fmt.Fprintf(tw, "  %s %s: %s\t%s\t%d\t%s\n", termSafe(t.TraceID), termSafe(t.RootService), termSafe(t.RootOperation), fmtMs(t.DurationMs), t.SpanCount, termSafe(t.Bottleneck))
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(tw, "\nWarnings")
		for _, wn := range r.Warnings {
			fmt.Fprintf(tw, "  %s [%s] %s\n", termSafe(wn.Severity), termSafe(wn.Code), termSafe(oneLine(wn.Message)))
		}
	}
	return tw.Flush()
}

// shortPath keeps a path readable on a terminal: the root, the number of
// steps left out, and the last two steps (the bottleneck and its caller).
func shortPath(path []string) string {
	if len(path) <= 4 {
		return strings.Join(path, " → ")
	}
	return fmt.Sprintf("%s → …%d… → %s", path[0], len(path)-3, strings.Join(path[len(path)-2:], " → "))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// termSafe makes untrusted text safe to print on a terminal: control
// characters (escape sequences, carriage returns, tabs that would break the
// columns) and invalid UTF-8 become U+FFFD.
func termSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			return '\uFFFD'
		}
		return r
	}, s)
}
