package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/trace-capture/trace-capture/receiver/archive"
)

// ErrNotBundle reports input that is not a trace-capture bundle.
var ErrNotBundle = errors.New("not a trace-capture bundle")

// Limits bound what a Reader accepts. Zero fields take the defaults.
type Limits struct {
	// MaxEntries bounds the number of tar entries (default 100,000).
	MaxEntries int
	// MaxManifestBytes bounds manifest.json (default 16 MiB).
	MaxManifestBytes int64
	// MaxEntryBytes bounds one entry's size (default 64 GiB).
	MaxEntryBytes int64
	// MaxTotalBytes bounds the sum of entry sizes (default 256 GiB).
	MaxTotalBytes int64
	// MaxRecordSize bounds one span-archive record (default
	// archive.DefaultMaxRecordSize).
	MaxRecordSize int
}

func (l Limits) withDefaults() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = 100_000
	}
	if l.MaxManifestBytes <= 0 {
		l.MaxManifestBytes = 16 << 20
	}
	if l.MaxEntryBytes <= 0 {
		l.MaxEntryBytes = 64 << 30
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = 256 << 30
	}
	return l
}

// Entry is one file of a bundle, read in order.
type Entry struct {
	// Name is the entry's clean relative name.
	Name string
	// Size is its size in bytes.
	Size int64
	// Archive is the manifest's description when the entry is a span
	// archive listed there, nil otherwise.
	Archive *Archive
	r       io.Reader
}

// Read reads the entry's content; valid until Reader.Next is called again.
func (e *Entry) Read(p []byte) (int, error) { return e.r.Read(p) }

// Reader reads a bundle as a stream, entry by entry, checking every entry.
type Reader struct {
	gz       *gzip.Reader
	tr       *tar.Reader
	lim      Limits
	manifest *Manifest
	entries  int
	total    int64
	archives map[string]*Archive
}

// NewReader reads the bundle's gzip and tar headers and its manifest.
func NewReader(r io.Reader, lim Limits) (*Reader, error) {
	lim = lim.withDefaults()
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) < 2 || magic[0] != 0x1f || magic[1] != 0x8b {
		return nil, fmt.Errorf("%w: not gzip-compressed", ErrNotBundle)
	}
	gz, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotBundle, err)
	}
	gz.Multistream(false)
	rd := &Reader{gz: gz, tr: tar.NewReader(gz), lim: lim, archives: map[string]*Archive{}}
	hdr, err := rd.tr.Next()
	if err != nil {
		return nil, fmt.Errorf("%w: not a tar archive: %v", ErrNotBundle, err)
	}
	if hdr.Name != ManifestName || hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("%w: first entry is %q, not %s", ErrNotBundle, hdr.Name, ManifestName)
	}
	if hdr.Size > lim.MaxManifestBytes {
		return nil, fmt.Errorf("read bundle manifest: %d bytes is over the %d-byte limit", hdr.Size, lim.MaxManifestBytes)
	}
	raw, err := io.ReadAll(io.LimitReader(rd.tr, lim.MaxManifestBytes))
	if err != nil {
		return nil, fmt.Errorf("read bundle manifest: %w", err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("read bundle manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("read bundle manifest: %w", err)
	}
	rd.manifest = &m
	for i := range m.Archives {
		rd.archives[m.Archives[i].Path] = &m.Archives[i]
	}
	rd.entries, rd.total = 1, hdr.Size
	return rd, nil
}

// Manifest returns the bundle's manifest.
func (r *Reader) Manifest() *Manifest { return r.manifest }

// Next returns the next file entry (folders are checked and skipped), or
// io.EOF after the last.
func (r *Reader) Next() (*Entry, error) {
	for {
		hdr, err := r.tr.Next()
		if err == io.EOF {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("read bundle: %w", err)
		}
		r.entries++
		if r.entries > r.lim.MaxEntries {
			return nil, fmt.Errorf("read bundle: more than %d entries", r.lim.MaxEntries)
		}
		if err := checkName(hdr.Name); err != nil {
			return nil, fmt.Errorf("read bundle entry %q: %w", hdr.Name, err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("read bundle entry %q: only regular files and folders are allowed (type %q)", hdr.Name, hdr.Typeflag)
		}
		if hdr.Size < 0 || hdr.Size > r.lim.MaxEntryBytes {
			return nil, fmt.Errorf("read bundle entry %q: size %d is over the %d-byte limit", hdr.Name, hdr.Size, r.lim.MaxEntryBytes)
		}
		r.total += hdr.Size
		if r.total > r.lim.MaxTotalBytes {
			return nil, fmt.Errorf("read bundle entry %q: bundle content is over the %d-byte limit", hdr.Name, r.lim.MaxTotalBytes)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		return &Entry{Name: name, Size: hdr.Size, Archive: r.archives[name], r: r.tr}, nil
	}
}

// Close releases the reader (not the underlying io.Reader).
func (r *Reader) Close() error { return r.gz.Close() }

// WalkFuncs receives what Walk finds. Nil functions are skipped.
type WalkFuncs struct {
	// Record is called with each record of each span archive.
	Record func(archivePath string, rec []byte) error
	// Truncated is called when a span archive ends without its end
	// marker; the records before it were all passed to Record.
	Truncated func(archivePath string, err error)
	// File is called with each entry that is not a span archive.
	File func(e *Entry) error
}

// Walk reads the bundle from r, calling fn for what it holds, and returns
// its manifest. Span archives are every entry under spans/; one that is cut
// short is reported through Truncated, not as an error.
func Walk(r io.Reader, lim Limits, fn WalkFuncs) (*Manifest, error) {
	rd, err := NewReader(r, lim)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	for {
		e, err := rd.Next()
		if err == io.EOF {
			return rd.Manifest(), nil
		}
		if err != nil {
			return rd.Manifest(), err
		}
		if strings.HasPrefix(e.Name, SpansDir) {
			if fn.Record == nil {
				continue
			}
			name := e.Name
			err := archive.ForEach(e, archive.ReaderOptions{MaxRecordSize: lim.MaxRecordSize, MaxDecodedBytes: lim.withDefaults().MaxTotalBytes}, func(rec []byte) error {
				return fn.Record(name, rec)
			})
			if errors.Is(err, archive.ErrTruncated) {
				if fn.Truncated != nil {
					fn.Truncated(name, err)
				}
				continue
			}
			if err != nil {
				return rd.Manifest(), fmt.Errorf("read span archive %s: %w", name, err)
			}
			continue
		}
		if fn.File != nil {
			if err := fn.File(e); err != nil {
				return rd.Manifest(), err
			}
		}
	}
}

// WalkFile is Walk on the bundle at path.
func WalkFile(path string, lim Limits, fn WalkFuncs) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	defer f.Close()
	m, err := Walk(f, lim, fn)
	if err != nil {
		return m, fmt.Errorf("read bundle %s: %w", path, err)
	}
	return m, nil
}
