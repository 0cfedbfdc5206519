package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

const (
	// Kind is the "kind" of every record file.
	Kind = "trace-capture.journal"
	// Version is the record format version this package writes and reads.
	Version = 1
	// DefaultDir is the default journal directory on a node. It is outside every folder that a
	// component loads files from (static-pod manifests, drop-in folders).
	DefaultDir = "/var/lib/trace-capture/journal"
	// recordSuffix ends every record file name.
	recordSuffix = ".json"
	// maxRecordSize bounds a record file: originals are at most MaxFileSize each, base64-encoded.
	maxRecordSize = 8 * MaxFileSize
)

// File is the saved state of one file in a Record.
type File struct {
	// Path is the node path, with symbolic links resolved, that was changed.
	Path string `json:"path"`
	// Existed tells whether a file was at Path before the change.
	Existed bool `json:"existed"`
	// Original holds the bytes before the change (empty when !Existed).
	Original []byte `json:"original,omitempty"`
	// OriginalSHA256 is the hex SHA-256 of Original ("" when !Existed).
	OriginalSHA256 string `json:"originalSHA256,omitempty"`
	// Mode holds the permission bits of the original file, or of the created file.
	Mode fs.FileMode `json:"mode"`
	// UID and GID owned the original file; -1 when unknown.
	UID int `json:"uid"`
	GID int `json:"gid"`
	// NewSHA256 is the hex SHA-256 of the bytes that trace-capture wrote.
	NewSHA256 string `json:"newSHA256"`
	// CreatedDirs lists the directories that were created for the file, outermost first.
	CreatedDirs []string `json:"createdDirs,omitempty"`
}

// Record is one journal entry: the files of one change set, in the order they were changed.
type Record struct {
	Kind    string `json:"kind"`
	Version int    `json:"version"`
	// ID names the record; it is also its file name without ".json". IDs sort by creation time.
	ID        string    `json:"id"`
	RunID     string    `json:"runID,omitempty"`
	Node      string    `json:"node,omitempty"`
	Component string    `json:"component,omitempty"`
	Created   time.Time `json:"created"`
	Files     []File    `json:"files"`
	// Meta is opaque data of the caller (for example how to restart the component).
	Meta json.RawMessage `json:"meta,omitempty"`
}

var (
	idPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$`)
	hexPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Validate checks the record's structure and the checksums of its originals.
func (r *Record) Validate() error {
	if r.Kind != Kind {
		return fmt.Errorf("kind %q is not %q", r.Kind, Kind)
	}
	if r.Version != Version {
		return fmt.Errorf("unsupported journal version %d (this build reads version %d)", r.Version, Version)
	}
	if !idPattern.MatchString(r.ID) {
		return fmt.Errorf("invalid record id %q", r.ID)
	}
	seen := map[string]bool{}
	for i, f := range r.Files {
		if err := CheckNodePath(f.Path); err != nil {
			return fmt.Errorf("file %d: %w", i, err)
		}
		if seen[f.Path] {
			return fmt.Errorf("file %d: %s listed twice", i, f.Path)
		}
		seen[f.Path] = true
		if !hexPattern.MatchString(f.NewSHA256) {
			return fmt.Errorf("file %s: invalid newSHA256", f.Path)
		}
		if f.Existed {
			if !hexPattern.MatchString(f.OriginalSHA256) {
				return fmt.Errorf("file %s: invalid originalSHA256", f.Path)
			}
			if SHA256(f.Original) != f.OriginalSHA256 {
				return fmt.Errorf("file %s: original bytes do not match their checksum", f.Path)
			}
		} else if len(f.Original) != 0 || f.OriginalSHA256 != "" {
			return fmt.Errorf("file %s: original bytes recorded for a file that did not exist", f.Path)
		}
		if f.Mode&^(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
			return fmt.Errorf("file %s: invalid mode %v", f.Path, f.Mode)
		}
		prev := "/"
		for _, d := range f.CreatedDirs {
			if err := CheckNodePath(d); err != nil {
				return fmt.Errorf("file %s: created directory: %w", f.Path, err)
			}
			if !strings.HasPrefix(f.Path, d+"/") || (prev != "/" && !strings.HasPrefix(d, prev+"/")) {
				return fmt.Errorf("file %s: created directory %s is not an ancestor", f.Path, d)
			}
			prev = d
		}
	}
	return nil
}

// Decode parses and validates a record file.
func Decode(data []byte) (Record, error) {
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("decode journal record: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Record{}, errors.New("decode journal record: trailing data")
	}
	if err := r.Validate(); err != nil {
		return Record{}, fmt.Errorf("decode journal record: %w", err)
	}
	return r, nil
}

// Encode returns the record as indented JSON.
func Encode(r Record) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("encode journal record: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode journal record: %w", err)
	}
	return append(b, '\n'), nil
}

// Options configures a Store.
type Options struct {
	// Dir is the journal directory on the node; "" means DefaultDir.
	Dir string
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Store is a journal directory on a node.
type Store struct {
	hostRoot string
	dir      string
	log      *slog.Logger
	now      func() time.Time
}

// NewStore returns the journal in opts.Dir below hostRoot. It does not touch the file system.
func NewStore(hostRoot string, opts Options) (*Store, error) {
	dir := opts.Dir
	if dir == "" {
		dir = DefaultDir
	}
	if err := CheckNodePath(dir); err != nil {
		return nil, fmt.Errorf("journal directory: %w", err)
	}
	s := &Store{hostRoot: hostRoot, dir: dir, log: opts.Logger, now: opts.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Dir returns the journal directory (a node path).
func (s *Store) Dir() string { return s.dir }

// HostRoot returns the host root the store works below.
func (s *Store) HostRoot() string { return s.hostRoot }

// RecordPath returns the node path of the record file with the given id.
func (s *Store) RecordPath(id string) string { return filepath.Join(s.dir, id+recordSuffix) }

func (s *Store) ensureDir() error {
	hp := HostPath(s.hostRoot, s.dir)
	if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
		return fmt.Errorf("create journal directory %s: %w", s.dir, err)
	}
	if err := os.Mkdir(hp, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create journal directory %s: %w", s.dir, err)
	}
	return syncDir(filepath.Dir(hp))
}

var nonID = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Create writes a new record and fsyncs it, before any file it describes is changed. It fills in
// Kind, Version, Created and (when empty) ID, and returns the record as written.
func (s *Store) Create(ctx context.Context, r Record) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("create journal record: %w", err)
	}
	r.Kind, r.Version = Kind, Version
	if r.Created.IsZero() {
		r.Created = s.now().UTC()
	}
	base := r.ID
	if base == "" {
		label := nonID.ReplaceAllString(r.Component, "-")
		if label == "" || label == "-" {
			label = "record"
		}
		base = r.Created.UTC().Format("20060102T150405.000000000Z") + "-" + strings.Trim(label, "-.")
	}
	if err := s.ensureDir(); err != nil {
		return Record{}, err
	}
	for i := 1; ; i++ {
		r.ID = base
		if i > 1 {
			r.ID = fmt.Sprintf("%s-%d", base, i)
		}
		data, err := Encode(r)
		if err != nil {
			return Record{}, err
		}
		err = s.writeExclusive(r.ID, data)
		if errors.Is(err, fs.ErrExist) && i < 1000 {
			continue
		}
		if err != nil {
			return Record{}, err
		}
		s.log.Info("journal record created", "id", r.ID, "component", r.Component, "files", len(r.Files))
		return r, nil
	}
}

// writeExclusive creates the record file atomically: the bytes go to a dot-named temporary file
// that is fsynced and then hard-linked to the final name, which fails if that name exists. A
// crash leaves either no record or a complete one (and maybe a temporary file that Cleanup
// removes).
func (s *Store) writeExclusive(id string, data []byte) (err error) {
	p := s.RecordPath(id)
	hp := HostPath(s.hostRoot, p)
	dir := filepath.Dir(hp)
	tmp, err := createTemp(dir, filepath.Base(hp))
	if err != nil {
		return fmt.Errorf("create journal record %s: %w", p, err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("create journal record %s: %w", p, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("create journal record %s: %w", p, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("create journal record %s: %w", p, err)
	}
	if err = os.Link(tmp.Name(), hp); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("create journal record %s: %w", p, err)
	}
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("create journal record %s: %w", p, err)
	}
	return nil
}

// Save replaces an existing record atomically (used to drop files that were verified).
func (s *Store) Save(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save journal record: %w", err)
	}
	data, err := Encode(r)
	if err != nil {
		return err
	}
	if err := s.ensureDir(); err != nil {
		return err
	}
	if err := WriteFileAtomic(s.hostRoot, s.RecordPath(r.ID), data, 0o600, -1, -1); err != nil {
		return fmt.Errorf("save journal record: %w", err)
	}
	return nil
}

// Load reads the record with the given id.
func (s *Store) Load(ctx context.Context, id string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("load journal record: %w", err)
	}
	if !idPattern.MatchString(id) {
		return Record{}, fmt.Errorf("load journal record: invalid id %q", id)
	}
	st, err := ReadFile(s.hostRoot, s.RecordPath(id))
	if err != nil {
		return Record{}, fmt.Errorf("load journal record: %w", err)
	}
	if !st.Exists {
		return Record{}, fmt.Errorf("load journal record %s: %w", id, fs.ErrNotExist)
	}
	if len(st.Data) > maxRecordSize {
		return Record{}, fmt.Errorf("load journal record %s: %w", id, ErrTooLarge)
	}
	r, err := Decode(st.Data)
	if err != nil {
		return Record{}, fmt.Errorf("load %s: %w", s.RecordPath(id), err)
	}
	if r.ID != id {
		return Record{}, fmt.Errorf("load %s: record id %q does not match its file name", s.RecordPath(id), r.ID)
	}
	return r, nil
}

// List returns the records in creation order. A record that cannot be read is reported in the
// error while the others are still returned. A missing journal directory holds no records.
func (s *Store) List(ctx context.Context) ([]Record, error) {
	entries, err := os.ReadDir(HostPath(s.hostRoot, s.dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list journal %s: %w", s.dir, err)
	}
	var ids []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, recordSuffix) || !e.Type().IsRegular() {
			continue
		}
		ids = append(ids, strings.TrimSuffix(name, recordSuffix))
	}
	sort.Strings(ids)
	var recs []Record
	var errs []error
	for _, id := range ids {
		r, err := s.Load(ctx, id)
		if errors.Is(err, fs.ErrNotExist) {
			// Restored and deleted by another restorer (an agent stopping
			// while its replacement starts) since ReadDir: nothing left to do.
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		recs = append(recs, r)
	}
	return recs, errors.Join(errs...)
}

// Delete removes the record with the given id. A missing record is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete journal record: %w", err)
	}
	if !idPattern.MatchString(id) {
		return fmt.Errorf("delete journal record: invalid id %q", id)
	}
	if err := RemoveFile(s.hostRoot, s.RecordPath(id)); err != nil {
		return fmt.Errorf("delete journal record: %w", err)
	}
	s.log.Info("journal record deleted", "id", id)
	return nil
}

// Cleanup removes the journal directory when it holds no records (nor anything else), and, for
// the default directory, its parent when that is empty too, so that a finished capture leaves
// nothing on the node. It is not an error when the directory is missing or still in use.
func (s *Store) Cleanup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("clean up journal: %w", err)
	}
	// Temporary files of writes that were interrupted.
	entries, _ := os.ReadDir(HostPath(s.hostRoot, s.dir))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), TempPrefix) && strings.HasSuffix(e.Name(), ".tmp") {
			os.Remove(HostPath(s.hostRoot, filepath.Join(s.dir, e.Name())))
		}
	}
	dirs := []string{s.dir}
	if s.dir == DefaultDir {
		dirs = append(dirs, filepath.Dir(DefaultDir))
	}
	for _, d := range dirs {
		hp := HostPath(s.hostRoot, d)
		err := os.Remove(hp)
		switch {
		case err == nil:
			if err := syncDir(filepath.Dir(hp)); err != nil {
				return fmt.Errorf("clean up journal: %w", err)
			}
		case errors.Is(err, fs.ErrNotExist):
		case errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST):
			return nil
		default:
			return fmt.Errorf("clean up journal: %w", err)
		}
	}
	return nil
}
