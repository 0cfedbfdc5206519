package enable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/trace-capture/trace-capture/capture/journal"
)

// ApplyOptions configures Apply.
type ApplyOptions struct {
	// JournalDir is the node path of the journal; "" means journal.DefaultDir. It must not be in
	// the folder of a changed file (a static-pod or drop-in folder loads every file in it).
	JournalDir string
	// RunID ties the journal record to one capture run.
	RunID string
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	// beforeWrite, in tests, runs before each file is written; an error fails the apply there.
	beforeWrite func(path string) error
}

// Applied says what Apply did.
type Applied struct {
	// RecordID names the journal record; "" when nothing was changed.
	RecordID string `json:"recordID,omitempty"`
	// JournalFile is the node path of the record.
	JournalFile string `json:"journalFile,omitempty"`
	// Files are the node paths written (symbolic links resolved), in order.
	Files []string `json:"files,omitempty"`
}

// recordMeta is what enable keeps in a journal record besides the files.
type recordMeta struct {
	Component Component `json:"component"`
	Version   Version   `json:"version"`
	Method    Method    `json:"method"`
	Restart   Restart   `json:"restart"`
}

// Apply writes a plan's changes below hostRoot. Before it changes anything it checks that every
// file still has the content the plan was made from, and writes a journal record holding the
// originals (fsynced). Files are then replaced atomically, in order, and read back. If a write
// fails, what was written is restored from the journal and the error says whether that worked; a
// record whose restore could not be verified is kept for a later Restore. A plan with nothing to
// change (AlreadyEnabled) does nothing.
func Apply(ctx context.Context, hostRoot string, plan Plan, opts ApplyOptions) (Applied, error) {
	if plan.AlreadyEnabled || len(plan.Changes) == 0 {
		return Applied{}, nil
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	store, err := journal.NewStore(hostRoot, journal.Options{Dir: opts.JournalDir, Logger: log, Now: opts.Now})
	if err != nil {
		return Applied{}, fmt.Errorf("apply %s: %w", plan.Component, err)
	}
	files, err := prepare(hostRoot, store, plan)
	if err != nil {
		return Applied{}, fmt.Errorf("apply %s: %w", plan.Component, err)
	}
	meta, err := json.Marshal(recordMeta{Component: plan.Component, Version: plan.Version, Method: plan.Method, Restart: plan.Restart})
	if err != nil {
		return Applied{}, fmt.Errorf("apply %s: %w", plan.Component, err)
	}
	rec, err := store.Create(ctx, journal.Record{
		RunID:     opts.RunID,
		Node:      plan.Node,
		Component: string(plan.Component),
		Files:     files,
		Meta:      meta,
	})
	if err != nil {
		return Applied{}, fmt.Errorf("apply %s: %w", plan.Component, err)
	}
	applied := Applied{RecordID: rec.ID, JournalFile: store.RecordPath(rec.ID)}
	for i, c := range plan.Changes {
		f := files[i]
		if err := writeChange(ctx, hostRoot, f, c, opts.beforeWrite); err != nil {
			err = fmt.Errorf("apply %s: %w", plan.Component, err)
			_, rerr := store.RestoreRecord(context.WithoutCancel(ctx), rec.ID, false)
			if rerr != nil {
				return applied, errors.Join(err, fmt.Errorf("undo the partial change (journal record %s kept): %w", rec.ID, rerr))
			}
			log.Info("partial change undone", "component", string(plan.Component), "record", rec.ID)
			return Applied{}, err
		}
		applied.Files = append(applied.Files, f.Path)
	}
	log.Info("tracing change applied", "component", string(plan.Component), "node", plan.Node, "record", rec.ID, "files", len(files))
	return applied, nil
}

// prepare resolves the plan's paths, checks the files are as planned, and builds the journal
// entries.
func prepare(hostRoot string, store *journal.Store, plan Plan) ([]journal.File, error) {
	jdir, err := journal.Resolve(hostRoot, store.Dir())
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	files := make([]journal.File, 0, len(plan.Changes))
	for _, c := range plan.Changes {
		if err := journal.CheckNodePath(c.Path); err != nil {
			return nil, err
		}
		if journal.SHA256(c.NewBytes) != c.NewSHA256 {
			return nil, fmt.Errorf("%s: the plan's new content does not match its checksum", c.Path)
		}
		if c.OriginalBytes != nil && journal.SHA256(c.OriginalBytes) != c.OriginalSHA256 {
			return nil, fmt.Errorf("%s: the plan's original content does not match its checksum", c.Path)
		}
		if len(c.NewBytes) > journal.MaxFileSize {
			return nil, fmt.Errorf("%s: %w", c.Path, journal.ErrTooLarge)
		}
		rp, err := journal.Resolve(hostRoot, c.Path)
		if err != nil {
			return nil, err
		}
		if seen[rp] {
			return nil, fmt.Errorf("%s: changed twice in one plan", rp)
		}
		seen[rp] = true
		if d := filepath.Dir(rp); jdir == d || strings.HasPrefix(jdir, d+"/") {
			return nil, fmt.Errorf("the journal %s is inside %s, the folder of %s", store.Dir(), d, c.Path)
		}
		st, err := journal.ReadFile(hostRoot, rp)
		if err != nil {
			return nil, err
		}
		switch {
		case c.OriginalBytes == nil && st.Exists:
			return nil, fmt.Errorf("%s exists now but did not when the plan was made", c.Path)
		case c.OriginalBytes != nil && !st.Exists:
			return nil, fmt.Errorf("%s was removed after the plan was made", c.Path)
		case c.OriginalBytes != nil && st.SHA256 != c.OriginalSHA256:
			return nil, fmt.Errorf("%s changed after the plan was made", c.Path)
		}
		f := journal.File{Path: rp, Existed: st.Exists, NewSHA256: c.NewSHA256, Mode: c.Mode, UID: -1, GID: -1}
		if st.Exists {
			f.Original, f.OriginalSHA256, f.Mode, f.UID, f.GID = st.Data, st.SHA256, st.Mode, st.UID, st.GID
		} else {
			dirs, err := journal.MissingDirs(hostRoot, rp)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.Path, err)
			}
			f.CreatedDirs = dirs
		}
		files = append(files, f)
	}
	return files, nil
}

func writeChange(ctx context.Context, hostRoot string, f journal.File, c Change, hook func(string) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if hook != nil {
		if err := hook(f.Path); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
	}
	if err := journal.MakeDirs(hostRoot, f.CreatedDirs); err != nil {
		return err
	}
	if err := journal.WriteFileAtomic(hostRoot, f.Path, c.NewBytes, f.Mode, f.UID, f.GID); err != nil {
		return err
	}
	st, err := journal.ReadFile(hostRoot, f.Path)
	if err != nil {
		return err
	}
	if !st.Exists || st.SHA256 != c.NewSHA256 {
		return fmt.Errorf("write %s: the content read back differs from what was written", f.Path)
	}
	return nil
}

// RestoreOptions configures Restore.
type RestoreOptions struct {
	// JournalDir is the node path of the journal; "" means journal.DefaultDir.
	JournalDir string
	// IDs restricts the restore to these records; empty means all.
	IDs []string
	// RunID restricts the restore to one run's records; empty means every run.
	RunID string
	// Force writes originals back even over files changed by someone else since.
	Force bool
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
}

// Restored is the outcome for one journal record.
type Restored struct {
	journal.RecordReport
	Component Component `json:"component"`
	Version   Version   `json:"componentVersion"`
	Method    Method    `json:"method"`
	// Restart is what has to restart now that the originals are back, when Changed is true.
	Restart Restart `json:"restart"`
}

// Restore puts back the originals of every selected journal record below hostRoot, newest first
// (see journal.Store.Restore): it is idempotent, continues past failures, reports them all in the
// error, and keeps the records of files it could not verify. The caller restarts the components
// whose record Changed, as Restart says. An emptied journal folder is removed.
func Restore(ctx context.Context, hostRoot string, opts RestoreOptions) ([]Restored, error) {
	store, err := journal.NewStore(hostRoot, journal.Options{Dir: opts.JournalDir, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	rep, err := store.Restore(ctx, journal.RestoreOptions{IDs: opts.IDs, RunID: opts.RunID, Force: opts.Force})
	out := make([]Restored, 0, len(rep.Records))
	for _, r := range rep.Records {
		out = append(out, withMeta(r))
	}
	if err == nil {
		// Leave no empty journal folder behind (kept while other records remain).
		err = store.Cleanup(context.WithoutCancel(ctx))
	}
	if err != nil {
		return out, fmt.Errorf("restore: %w", err)
	}
	return out, nil
}

func withMeta(r journal.RecordReport) Restored {
	res := Restored{RecordReport: r, Component: Component(r.Component)}
	var m recordMeta
	if len(r.Meta) > 0 && json.Unmarshal(r.Meta, &m) == nil {
		res.Version, res.Method, res.Restart = m.Version, m.Method, m.Restart
		if res.Component == "" {
			res.Component = m.Component
		}
	}
	return res
}

// PendingRecord is a journal record not yet restored.
type PendingRecord struct {
	journal.Record
	Component Component `json:"component"`
	Version   Version   `json:"componentVersion"`
	Method    Method    `json:"method"`
	Restart   Restart   `json:"restart"`
}

// Pending lists the journal records below hostRoot that are not restored yet, oldest first. An
// agent that starts and finds some restores them before anything else.
func Pending(ctx context.Context, hostRoot, journalDir string) ([]PendingRecord, error) {
	store, err := journal.NewStore(hostRoot, journal.Options{Dir: journalDir})
	if err != nil {
		return nil, fmt.Errorf("list pending restores: %w", err)
	}
	recs, err := store.List(ctx)
	out := make([]PendingRecord, 0, len(recs))
	for _, r := range recs {
		p := PendingRecord{Record: r, Component: Component(r.Component)}
		var m recordMeta
		if len(r.Meta) > 0 && json.Unmarshal(r.Meta, &m) == nil {
			p.Version, p.Method, p.Restart = m.Version, m.Method, m.Restart
		}
		out = append(out, p)
	}
	if err != nil {
		return out, fmt.Errorf("list pending restores: %w", err)
	}
	return out, nil
}
