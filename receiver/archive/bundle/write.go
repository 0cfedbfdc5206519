package bundle

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

// File is a file on disk to put into a bundle under Name.
type File struct {
	// Name is the entry name in the bundle, a clean relative path such as
	// "spans/local.tcspans" or "logs/trace-capture.log".
	Name string
	// Path is the file on disk.
	Path string
}

// SpansDir and LogsDir are the bundle folders for span archives and logs.
const (
	SpansDir = "spans/"
	LogsDir  = "logs/"
)

// Write writes a bundle to w: the manifest first, then files in the order
// given. Files under SpansDir must be listed in m.Archives; the names of
// the others are recorded in m.Files. Entry times are the manifest's window
// end, so equal inputs give equal bytes.
func Write(w io.Writer, m *Manifest, files []File) error {
	if m.SchemaVersion == 0 {
		m.SchemaVersion = SchemaVersion
	}
	listed := map[string]bool{}
	for _, a := range m.Archives {
		listed[a.Path] = true
	}
	m.Files = m.Files[:0]
	seen := map[string]bool{ManifestName: true}
	for _, f := range files {
		if err := checkName(f.Name); err != nil {
			return fmt.Errorf("add %q to bundle: %w", f.Name, err)
		}
		if seen[f.Name] {
			return fmt.Errorf("add %q to bundle: duplicate name", f.Name)
		}
		seen[f.Name] = true
		if strings.HasPrefix(f.Name, SpansDir) {
			if !listed[f.Name] {
				return fmt.Errorf("add %q to bundle: span archive missing from the manifest", f.Name)
			}
			delete(listed, f.Name)
			continue
		}
		m.Files = append(m.Files, f.Name)
	}
	for name := range listed {
		return fmt.Errorf("manifest lists archive %q that is not in the bundle", name)
	}
	m.Normalize()
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	manifest = append(manifest, '\n')

	mtime := m.Window.End
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	// Span archives are zstd already: the fastest gzip level costs little
	// and still shrinks manifest and logs.
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return fmt.Errorf("create gzip writer: %w", err)
	}
	tw := tar.NewWriter(zw)
	werr := writeEntries(tw, mtime, manifest, files)
	werr = errors.Join(werr, tw.Close(), zw.Close())
	if werr != nil {
		return fmt.Errorf("write bundle: %w", werr)
	}
	return nil
}

func writeEntries(tw *tar.Writer, mtime time.Time, manifest []byte, files []File) error {
	dirs := map[string]bool{}
	if err := tw.WriteHeader(&tar.Header{Name: ManifestName, Mode: 0o600, Size: int64(len(manifest)), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if _, err := tw.Write(manifest); err != nil {
		return err
	}
	for _, f := range files {
		if dir := filepath.ToSlash(filepath.Dir(f.Name)); dir != "." && !dirs[dir] {
			dirs[dir] = true
			if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Mode: 0o700, ModTime: mtime, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		if err := copyFile(tw, f, mtime); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(tw *tar.Writer, f File, mtime time.Time) error {
	in, err := os.Open(f.Path)
	if err != nil {
		return fmt.Errorf("open %s: %w", f.Name, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", f.Name, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("add %s: not a regular file", f.Name)
	}
	if err := tw.WriteHeader(&tar.Header{Name: f.Name, Mode: 0o600, Size: fi.Size(), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("add %s: %w", f.Name, err)
	}
	// The size was fixed by the header: copy exactly that much, so a file
	// that grows meanwhile cannot corrupt the tar stream.
	if _, err := io.CopyN(tw, in, fi.Size()); err != nil {
		return fmt.Errorf("add %s: %w", f.Name, err)
	}
	return nil
}

// WriteFile writes a bundle to path atomically: into a temporary file in
// the same folder, synced, then renamed. The bundle is readable by its owner
// only, since spans may carry names a cluster would rather keep.
func WriteFile(path string, m *Manifest, files []File) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("create bundle: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := Write(tmp, m, files); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync bundle: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close bundle: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return fmt.Errorf("chmod bundle: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename bundle into place: %w", err)
	}
	return nil
}

// checkName accepts clean, relative, slash-separated names without
// traversal, absolute paths or odd characters.
func checkName(name string) error {
	switch {
	case name == "", len(name) > 255:
		return errors.New("bad entry name length")
	case strings.HasPrefix(name, "/"), strings.Contains(name, "\\"), filepath.IsAbs(name):
		return errors.New("absolute entry name")
	case strings.ContainsAny(name, "\x00:"):
		return errors.New("entry name with forbidden characters")
	}
	trimmed := strings.TrimSuffix(name, "/")
	for _, part := range strings.Split(trimmed, "/") {
		if part == "" || part == "." || part == ".." {
			return errors.New("entry name escapes the bundle or is not clean")
		}
	}
	return nil
}
