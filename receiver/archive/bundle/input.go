package bundle

import (
	"errors"
	"fmt"
	"os"

	"github.com/trace-capture/trace-capture/receiver/archive/otlpfile"
)

// WalkPath reads the spans at path, whatever it holds: a bundle (whose
// manifest it returns), or any trace file that otlpfile reads (it then
// returns a nil manifest, and every record is reported as coming from the
// file's base name).
func WalkPath(path string, lim Limits, fn WalkFuncs) (*Manifest, error) {
	m, err := WalkFile(path, lim, fn)
	if err == nil || !errors.Is(err, ErrNotBundle) {
		return m, err
	}
	f, oerr := os.Open(path)
	if oerr != nil {
		return nil, fmt.Errorf("open %s: %w", path, oerr)
	}
	defer f.Close()
	record := fn.Record
	if record == nil {
		record = func(string, []byte) error { return nil }
	}
	_, rerr := otlpfile.Read(f, otlpfile.Options{MaxRecordSize: lim.MaxRecordSize, MaxDecodedBytes: lim.withDefaults().MaxTotalBytes}, func(rec []byte) error {
		return record(path, rec)
	})
	if rerr != nil {
		if errors.Is(rerr, otlpfile.ErrUnknownFormat) {
			return nil, fmt.Errorf("read %s: neither a trace-capture bundle nor a trace file: %w", path, rerr)
		}
		return nil, fmt.Errorf("read %s: %w", path, rerr)
	}
	return nil, nil
}
