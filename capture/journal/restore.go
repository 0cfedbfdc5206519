package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// ErrConflict reports a file whose current content is neither the original nor what trace-capture
// wrote: someone else changed it, so it is left alone unless the restore is forced.
var ErrConflict = errors.New("changed by someone else since trace-capture wrote it")

// Outcome says what restoring one file did.
type Outcome string

const (
	// Restored: the original bytes were written back and verified.
	Restored Outcome = "restored"
	// Removed: the file did not exist before; the one trace-capture created was removed.
	Removed Outcome = "removed"
	// Unchanged: the file was already in its original state (never changed, or restored earlier).
	Unchanged Outcome = "unchanged"
	// Conflict: the file was changed by someone else and left alone; see ErrConflict.
	Conflict Outcome = "conflict"
	// Failed: restoring failed; the file stays in the journal.
	Failed Outcome = "failed"
)

// FileReport is the outcome for one file.
type FileReport struct {
	Path    string  `json:"path"`
	Outcome Outcome `json:"outcome"`
	// Error explains Conflict and Failed.
	Error string `json:"error,omitempty"`
}

// RecordReport is the outcome for one record.
type RecordReport struct {
	ID        string          `json:"id"`
	RunID     string          `json:"runID,omitempty"`
	Node      string          `json:"node,omitempty"`
	Component string          `json:"component,omitempty"`
	Meta      json.RawMessage `json:"meta,omitempty"`
	Files     []FileReport    `json:"files"`
	// Changed is true when at least one file was written back or removed, so the component has
	// to be restarted (or its static pod is being recreated).
	Changed bool `json:"changed"`
	// Complete is true when every file was verified and the record was deleted.
	Complete bool `json:"complete"`
}

// Report is the outcome of a restore.
type Report struct {
	Records []RecordReport `json:"records"`
}

// Complete tells whether every record was restored and deleted.
func (r Report) Complete() bool {
	for _, rec := range r.Records {
		if !rec.Complete {
			return false
		}
	}
	return true
}

// RestoreOptions selects what to restore.
type RestoreOptions struct {
	// IDs restricts the restore to these records; empty means all.
	IDs []string
	// RunID restricts the restore to the records of one run; empty means any run.
	RunID string
	// Force writes the originals back even over files that someone else changed since.
	Force bool
}

// Restore restores the selected records, newest first, and deletes each record whose files were
// all verified. Every file is attempted even when others fail; the error joins all failures, and
// the records concerned keep their unverified files for a later attempt.
func (s *Store) Restore(ctx context.Context, opts RestoreOptions) (Report, error) {
	recs, listErr := s.List(ctx)
	var rep Report
	errs := []error{listErr}
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if len(opts.IDs) > 0 && !slices.Contains(opts.IDs, r.ID) {
			continue
		}
		if opts.RunID != "" && r.RunID != opts.RunID {
			continue
		}
		rr, err := s.restoreRecord(ctx, r, opts.Force)
		rep.Records = append(rep.Records, rr)
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}

// RestoreRecord restores one record (see Restore).
func (s *Store) RestoreRecord(ctx context.Context, id string, force bool) (RecordReport, error) {
	r, err := s.Load(ctx, id)
	if err != nil {
		return RecordReport{ID: id}, fmt.Errorf("restore journal record: %w", err)
	}
	return s.restoreRecord(ctx, r, force)
}

func (s *Store) restoreRecord(ctx context.Context, r Record, force bool) (RecordReport, error) {
	rep := RecordReport{ID: r.ID, RunID: r.RunID, Node: r.Node, Component: r.Component, Meta: r.Meta}
	var errs []error
	var keep []File
	// Undo in the reverse order of the change.
	for i := len(r.Files) - 1; i >= 0; i-- {
		f := r.Files[i]
		var out Outcome
		var err error
		if cerr := ctx.Err(); cerr != nil {
			out, err = Failed, cerr
		} else {
			out, err = s.restoreFile(f, force)
		}
		if err == nil {
			removeStaleTemps(s.hostRoot, f.Path)
		}
		fr := FileReport{Path: f.Path, Outcome: out}
		if err != nil {
			err = fmt.Errorf("restore %s: %w", f.Path, err)
			fr.Error = err.Error()
			errs = append(errs, err)
			keep = append([]File{f}, keep...)
		}
		if out == Restored || out == Removed {
			rep.Changed = true
		}
		rep.Files = append(rep.Files, fr)
		s.log.Info("file restored", "record", r.ID, "path", f.Path, "outcome", string(out))
	}
	if len(keep) == 0 {
		if err := s.Delete(context.WithoutCancel(ctx), r.ID); err != nil {
			errs = append(errs, err)
		} else {
			rep.Complete = true
		}
		return rep, errors.Join(errs...)
	}
	if len(keep) < len(r.Files) {
		r.Files = keep
		if err := s.Save(context.WithoutCancel(ctx), r); err != nil {
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

// restoreFile puts one file back and verifies it.
func (s *Store) restoreFile(f File, force bool) (Outcome, error) {
	cur, err := ReadFile(s.hostRoot, f.Path)
	if err != nil {
		return Failed, err
	}
	if f.Existed {
		if cur.Exists && cur.SHA256 == f.OriginalSHA256 {
			return Unchanged, nil
		}
		if !force && (!cur.Exists || cur.SHA256 != f.NewSHA256) {
			return Conflict, conflictErr(cur)
		}
		if err := WriteFileAtomic(s.hostRoot, f.Path, f.Original, f.Mode, f.UID, f.GID); err != nil {
			return Failed, err
		}
		if err := s.verify(f.Path, true, f.OriginalSHA256); err != nil {
			return Failed, err
		}
		return Restored, nil
	}
	out := Unchanged
	if cur.Exists {
		if !force && cur.SHA256 != f.NewSHA256 {
			return Conflict, conflictErr(cur)
		}
		if err := RemoveFile(s.hostRoot, f.Path); err != nil {
			return Failed, err
		}
		if err := s.verify(f.Path, false, ""); err != nil {
			return Failed, err
		}
		out = Removed
	}
	// Remove the directories created for the file, innermost first, if nothing else is in them.
	for i := len(f.CreatedDirs) - 1; i >= 0; i-- {
		d := f.CreatedDirs[i]
		err := os.Remove(HostPath(s.hostRoot, d))
		switch {
		case err == nil, errors.Is(err, fs.ErrNotExist):
		case errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST):
			s.log.Info("created directory left in place: not empty", "dir", d)
			return out, nil
		default:
			return Failed, fmt.Errorf("remove created directory %s: %w", d, err)
		}
	}
	return out, nil
}

func conflictErr(cur FileState) error {
	if !cur.Exists {
		return fmt.Errorf("%w (the file was deleted)", ErrConflict)
	}
	return fmt.Errorf("%w (sha256 now %s)", ErrConflict, cur.SHA256)
}

func (s *Store) verify(p string, exists bool, sum string) error {
	cur, err := ReadFile(s.hostRoot, p)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if cur.Exists != exists || cur.SHA256 != sum {
		return errors.New("verify: content does not match the original after writing it")
	}
	return nil
}

// removeStaleTemps removes the temporary files that an interrupted WriteFileAtomic of p may have
// left next to it (dot-files, so no component loaded them).
func removeStaleTemps(hostRoot, p string) {
	base := filepath.Base(p)
	if len(base) > 100 {
		base = base[:100] // as createTemp shortens it
	}
	pattern := filepath.Join(HostPath(hostRoot, filepath.Dir(p)), TempPrefix+globEscape(base)+".*.tmp")
	matches, _ := filepath.Glob(pattern)
	for _, m := range matches {
		os.Remove(m)
	}
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
