package capture

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trace-capture/trace-capture/receiver/archive"
	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
	"github.com/trace-capture/trace-capture/receiver/archive/otlpfile"
)

// ImportOptions configures Import.
type ImportOptions struct {
	// Inputs are trace files in any format otlpfile reads.
	Inputs []string
	// Output is the bundle to write.
	Output string
	// ToolVersion goes into the manifest.
	ToolVersion string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// ImportResult says what Import wrote.
type ImportResult struct {
	Manifest *bundle.Manifest
	Formats  map[string]otlpfile.Format
}

// Import converts trace files into one bundle, one span archive per input.
// The window is taken from the spans' own times.
func Import(ctx context.Context, opts ImportOptions) (*ImportResult, error) {
	if len(opts.Inputs) == 0 {
		return nil, errors.New("import: no input files")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	work, err := os.MkdirTemp(filepath.Dir(opts.Output), ".trace-capture-import-*")
	if err != nil {
		return nil, fmt.Errorf("create work folder: %w", err)
	}
	defer os.RemoveAll(work)

	m := &bundle.Manifest{
		Tool: bundle.Tool{Name: "trace-capture", Version: opts.ToolVersion},
		Mode: bundle.ModeImport,
	}
	res := &ImportResult{Manifest: m, Formats: map[string]otlpfile.Format{}}
	sources := newSourceTally()
	var files []bundle.File
	var first, last int64
	for i, in := range opts.Inputs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := fmt.Sprintf("spans/%02d-%s%s", i+1, sanitize(filepath.Base(in)), archive.FileExtension)
		path := filepath.Join(work, fmt.Sprintf("%d%s", i, archive.FileExtension))
		w, err := archive.Create(path, archive.WriterOptions{FlushInterval: -1})
		if err != nil {
			return nil, err
		}
		var spans int64
		format, rerr := otlpfile.ReadFile(in, otlpfile.Options{}, func(rec []byte) error {
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec)
			if err != nil {
				return err
			}
			spans += int64(td.SpanCount())
			lo, hi := sources.add(td, int64(len(rec)))
			if lo > 0 && (first == 0 || lo < first) {
				first = lo
			}
			if hi > last {
				last = hi
			}
			return w.Append(rec)
		})
		cerr := w.Close()
		// A span archive whose writer was killed still holds every record
		// flushed before: keep them, and say so.
		truncated := format == otlpfile.FormatSpanArchive && errors.Is(rerr, archive.ErrTruncated)
		if truncated {
			rerr = nil
		}
		if rerr != nil || cerr != nil {
			return nil, fmt.Errorf("import %s: %w", in, errors.Join(rerr, cerr))
		}
		st := w.Stats()
		res.Formats[in] = format
		m.Archives = append(m.Archives, bundle.Archive{Path: name, Records: st.Records, Spans: spans, RawBytes: st.RawBytes, Bytes: st.WrittenBytes, Truncated: truncated})
		note := fmt.Sprintf("%s imported from %s (%s)", name, filepath.Base(in), format)
		if truncated {
			note += fmt.Sprintf("; the input was cut short (its writer was killed), all %d complete records kept", st.Records)
		}
		m.Notes = append(m.Notes, note)
		files = append(files, bundle.File{Name: name, Path: path})
	}
	m.Sources = sources.list()
	if first > 0 {
		m.Window = bundle.Window{Start: time.Unix(0, first).UTC(), End: time.Unix(0, last).UTC()}
	} else {
		t := now().UTC()
		m.Window = bundle.Window{Start: t, End: t}
	}
	if err := bundle.WriteFile(opts.Output, m, files); err != nil {
		return nil, err
	}
	return res, nil
}

// sourceTally counts spans per (service.name, host.name) of decoded
// requests.
type sourceTally struct {
	by map[[2]string]*bundle.Source
}

func newSourceTally() *sourceTally { return &sourceTally{by: map[[2]string]*bundle.Source{}} }

// add counts td and returns the earliest start and latest end of its spans
// in Unix nanoseconds (0 when it has none).
func (s *sourceTally) add(td ptrace.Traces, size int64) (lo, hi int64) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		attrs := rs.Resource().Attributes()
		key := [2]string{}
		if v, ok := attrs.Get("service.name"); ok {
			key[0] = v.AsString()
		}
		if v, ok := attrs.Get("host.name"); ok {
			key[1] = v.AsString()
		}
		src := s.by[key]
		if src == nil {
			src = &bundle.Source{Service: key[0], Host: key[1]}
			s.by[key] = src
		}
		src.Requests++
		src.Bytes += size / int64(rss.Len())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			src.Spans += int64(spans.Len())
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				if st := int64(sp.StartTimestamp()); st > 0 && (lo == 0 || st < lo) {
					lo = st
				}
				if en := int64(sp.EndTimestamp()); en > hi {
					hi = en
				}
			}
		}
	}
	return lo, hi
}

func (s *sourceTally) list() []bundle.Source {
	out := make([]bundle.Source, 0, len(s.by))
	for _, src := range s.by {
		out = append(out, *src)
	}
	return out
}

// sanitize keeps a file name safe as part of a bundle entry name.
func sanitize(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			b[i] = '_'
		}
	}
	if len(b) > 100 {
		b = b[:100]
	}
	return string(b)
}
