package redact

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trace-capture/trace-capture/receiver/archive"
	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
)

// Bundle writes a redacted copy of the bundle at in to out (mode 0600,
// atomically) and, when opts.MappingFile is set, the mapping of its tokens
// to that file. It reads the input twice: once to learn every name in the
// spans' structured fields, once to rewrite. Every span record is decoded,
// redacted and encoded again (a record that does not decode is left out
// and counted); other files are scrubbed (see RedactFiles); the manifest
// is redacted (see RedactManifest) and carries the report.
func Bundle(ctx context.Context, in, out string, opts Options) (Report, error) {
	w, err := NewRecordRewriter(opts)
	if err != nil {
		return Report{}, err
	}
	if opts.MappingFile != "" {
		if err := w.UseMapping(opts.MappingFile); err != nil {
			return Report{}, err
		}
	}
	// Pass 1: learn the names.
	var records int64
	m, err := bundle.WalkFile(in, opts.Limits, bundle.WalkFuncs{
		Record: func(_ string, rec []byte) error {
			records++
			if records&255 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			_ = w.Learn(rec) // an undecodable record is counted in pass 2
			return nil
		},
		File: func(e *bundle.Entry) error {
			_, err := w.redactFile(e, e.Name, "", true)
			return err
		},
	})
	if err != nil {
		return Report{}, fmt.Errorf("redact bundle: %w", err)
	}
	learn := w.e.newJob(true)
	for _, s := range m.Sources {
		learn.host(s.Host)
	}
	for _, a := range m.Archives {
		learn.host(a.Host)
	}
	if len(m.Cluster) > 0 {
		_, _ = w.json(m.Cluster, true)
	}
	dry := w.e.newJob(false)
	dry.discard = true
	for _, n := range m.Notes {
		dry.scrub(n)
	}
	w.log.Info("learned names", "records", records, "names", w.e.tok.dictSize())

	work, err := os.MkdirTemp(filepath.Dir(out), ".trace-capture-redact-*")
	if err != nil {
		return Report{}, fmt.Errorf("redact bundle: create work folder: %w", err)
	}
	defer os.RemoveAll(work)

	// Pass 2: rewrite.
	type arch struct {
		w      *archive.Writer
		path   string
		spans  int64
		listed *bundle.Archive
	}
	archives := map[string]*arch{}
	var order []string
	open := func(name string) (*arch, error) {
		if a := archives[name]; a != nil {
			return a, nil
		}
		p := filepath.Join(work, fmt.Sprintf("archive-%d%s", len(archives), archive.FileExtension))
		aw, err := archive.Create(p, archive.WriterOptions{FlushInterval: -1})
		if err != nil {
			return nil, err
		}
		a := &arch{w: aw, path: p}
		archives[name] = a
		order = append(order, name)
		return a, nil
	}
	defer func() {
		for _, a := range archives {
			if a.w != nil {
				a.w.Close()
			}
		}
	}()
	for i := range m.Archives {
		a, err := open(m.Archives[i].Path)
		if err != nil {
			return Report{}, fmt.Errorf("redact bundle: %w", err)
		}
		a.listed = &m.Archives[i]
	}
	var files []bundle.File
	var filesIn []string
	records = 0
	_, err = bundle.WalkFile(in, opts.Limits, bundle.WalkFuncs{
		Record: func(name string, rec []byte) error {
			records++
			if records&255 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			a, err := open(name)
			if err != nil {
				return err
			}
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec)
			if err != nil {
				w.mu.Lock()
				w.undecoded++
				w.mu.Unlock()
				return nil
			}
			a.spans += w.Traces(td)
			red, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
			if err != nil {
				return fmt.Errorf("encode OTLP trace request: %w", err)
			}
			return a.w.Append(red)
		},
		File: func(e *bundle.Entry) error {
			name := w.EntryName(e.Name)
			dst := filepath.Join(work, fmt.Sprintf("file-%d", len(filesIn)))
			filesIn = append(filesIn, e.Name)
			action, err := w.redactFile(e, e.Name, dst, false)
			if err != nil {
				return err
			}
			w.noteFile(name, action)
			if action != FileDropped {
				files = append(files, bundle.File{Name: name, Path: dst})
			}
			return nil
		},
	})
	if err != nil {
		return Report{}, fmt.Errorf("redact bundle: %w", err)
	}

	// The manifest: archives as written, everything else redacted.
	red := *m
	red.Archives = nil
	red.Files = nil
	for _, name := range order {
		a := archives[name]
		cerr := a.w.Close()
		st := a.w.Stats()
		a.w = nil
		if cerr != nil {
			return Report{}, fmt.Errorf("redact bundle: write %s: %w", name, cerr)
		}
		entry := bundle.Archive{Path: name}
		if a.listed != nil {
			entry = *a.listed
		}
		entry.Records, entry.Spans, entry.RawBytes, entry.Bytes = st.Records, a.spans, st.RawBytes, st.WrittenBytes
		red.Archives = append(red.Archives, entry)
		files = append(files, bundle.File{Name: w.EntryName(name), Path: a.path})
	}
	red.Sources = append([]bundle.Source(nil), m.Sources...)
	red.Notes = append([]string(nil), m.Notes...)
	if err := w.RedactManifest(&red); err != nil {
		return Report{}, err
	}
	if err := bundle.WriteFile(out, &red, files); err != nil {
		return Report{}, fmt.Errorf("redact bundle: %w", err)
	}
	if opts.MappingFile != "" {
		if err := w.WriteMapping(opts.MappingFile); err != nil {
			return Report{}, errors.Join(fmt.Errorf("redacted bundle written to %s, but its mapping was not", out), err)
		}
	}
	rep := w.Report()
	w.log.Info("redacted bundle", "output", out, "records", rep.Records, "spans", rep.Spans, "files", len(rep.Files))
	return rep, nil
}
