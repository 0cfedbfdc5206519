package analyze

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
)

// Input is a capture to analyze: a bundle, or any trace file that
// `trace-capture import` reads.
type Input struct {
	// Path is the file.
	Path string
	// Manifest is the bundle's manifest; nil for a plain trace file.
	Manifest *bundle.Manifest
	// Limits bound what is read from the file.
	Limits bundle.Limits
}

// OpenInput checks that path can be read and, for a bundle, reads its
// manifest.
func OpenInput(path string) (*Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture: %w", err)
	}
	defer f.Close()
	in := &Input{Path: path}
	rd, err := bundle.NewReader(f, in.Limits)
	switch {
	case err == nil:
		in.Manifest = rd.Manifest()
		rd.Close()
	case errors.Is(err, bundle.ErrNotBundle):
		// A plain trace file: its format is detected when read.
	default:
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return in, nil
}

// Source returns the RecordSource of every span record in the input. A span
// archive that was cut short (its writer was killed) yields its complete
// records; the source then ends with an error naming it, which Run turns
// into a warning.
func (in *Input) Source() RecordSource {
	return func(yield func(rec []byte) error) error {
		var truncated []error
		_, err := bundle.WalkPath(in.Path, in.Limits, bundle.WalkFuncs{
			Record: func(_ string, rec []byte) error { return yield(rec) },
			Truncated: func(name string, err error) {
				truncated = append(truncated, fmt.Errorf("%s: %w", name, err))
			},
		})
		return errors.Join(append([]error{err}, truncated...)...)
	}
}

// ApplyManifest fills opts' capture facts (sources, drops) from the
// manifest, if there is one.
func (in *Input) ApplyManifest(opts *Options) {
	m := in.Manifest
	if m == nil {
		return
	}
	by := map[string]*SourceInfo{}
	for _, s := range m.Sources {
		name := s.Service
		if name == "" {
			name = "unknown_service"
		}
		si := by[name]
		if si == nil {
			si = &SourceInfo{Name: name, Services: []string{name}}
			by[name] = si
		}
		si.ReceivedSpans += s.Spans
		for _, d := range s.Dropped {
			if si.Dropped == nil {
				si.Dropped = map[string]int64{}
			}
			si.Dropped[d.Reason] += d.Spans
		}
	}
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		opts.Sources = append(opts.Sources, *by[n])
	}
}
