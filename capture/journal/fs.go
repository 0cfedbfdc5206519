package journal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// MaxFileSize is the largest file that the journal reads or records. Configuration files are far
// smaller; the limit keeps a wrong path (a log, a disk image) from filling memory or the journal.
const MaxFileSize = 16 << 20

// maxSymlinks bounds symbolic-link resolution, like the kernel's ELOOP limit.
const maxSymlinks = 40

// ErrTooLarge is returned for files larger than MaxFileSize.
var ErrTooLarge = errors.New("file too large")

// SHA256 returns the lowercase hex SHA-256 of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// HostPath returns where the node path p is seen from this process: p below hostRoot. It does not
// resolve symbolic links (see Resolve).
func HostPath(hostRoot, p string) string {
	if hostRoot == "" {
		hostRoot = "/"
	}
	return filepath.Join(hostRoot, p)
}

// CheckNodePath returns an error unless p is an absolute, clean node path other than "/".
func CheckNodePath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case !filepath.IsAbs(p):
		return fmt.Errorf("path %q is not absolute", p)
	case filepath.Clean(p) != p:
		return fmt.Errorf("path %q is not clean", p)
	case p == "/":
		return errors.New("path is the root directory")
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("path %q contains a NUL byte", p)
	}
	return nil
}

// Resolve resolves the symbolic links in the node path p as the node would, treating hostRoot as
// the root directory: an absolute link target is taken relative to hostRoot, and ".." never climbs
// above it. Components that do not exist are kept as they are. The result is a clean node path.
func Resolve(hostRoot, p string) (string, error) {
	if err := CheckNodePath(p); err != nil {
		return "", err
	}
	if hostRoot == "" {
		hostRoot = "/"
	}
	rest := strings.Split(strings.TrimPrefix(p, "/"), "/")
	resolved := "/"
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, name)
		fi, err := os.Lstat(HostPath(hostRoot, next))
		if errors.Is(err, fs.ErrNotExist) {
			// The rest does not exist (yet): nothing more to resolve.
			return filepath.Clean(filepath.Join(append([]string{next}, rest...)...)), nil
		}
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", p, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		links++
		if links > maxSymlinks {
			return "", fmt.Errorf("resolve %s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(HostPath(hostRoot, next))
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", p, err)
		}
		if filepath.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return resolved, nil
}

// FileState is what ReadFile found at a path.
type FileState struct {
	// Exists is false when nothing is at the path.
	Exists bool
	// Data is the content; nil when the file does not exist, non-nil (maybe empty) otherwise.
	Data []byte
	// SHA256 is the hex SHA-256 of Data, "" when the file does not exist.
	SHA256 string
	// Mode holds the permission bits (with setuid, setgid and sticky).
	Mode fs.FileMode
	// UID and GID own the file; -1 when unknown.
	UID, GID int
}

// ReadFile reads the regular file at node path p (already resolved) below hostRoot. A missing file
// is not an error: it returns FileState{Exists: false}.
func ReadFile(hostRoot, p string) (FileState, error) {
	st := FileState{UID: -1, GID: -1}
	f, err := os.Open(HostPath(hostRoot, p))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return st, fmt.Errorf("read %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return st, fmt.Errorf("read %s: not a regular file (%s)", p, fi.Mode().Type())
	}
	if fi.Size() > MaxFileSize {
		return st, fmt.Errorf("read %s: %w (%d bytes, limit %d)", p, ErrTooLarge, fi.Size(), MaxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return st, fmt.Errorf("read %s: %w", p, err)
	}
	if len(data) > MaxFileSize {
		return st, fmt.Errorf("read %s: %w", p, ErrTooLarge)
	}
	if data == nil {
		data = []byte{}
	}
	st.Exists = true
	st.Data = data
	st.SHA256 = SHA256(data)
	st.Mode = permBits(fi.Mode())
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.UID, st.GID = int(sys.Uid), int(sys.Gid)
	}
	return st, nil
}

func permBits(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// TempPrefix starts the name of every temporary file the journal writes. It starts with a dot on
// purpose: the kubelet loads every file in its static-pod folder whose name does not start with a
// dot, and systemd and CRI-O ignore dot-files in their drop-in folders.
const TempPrefix = ".trace-capture-"

// WriteFileAtomic replaces the file at node path p (already resolved) below hostRoot with data:
// it writes a dot-named temporary file in the same directory, sets its mode and owner (uid or gid
// -1: keep this process's), fsyncs it, renames it over p and fsyncs the directory. The directory
// must exist. Readers see either the old or the new content, never a mix.
func WriteFileAtomic(hostRoot, p string, data []byte, mode fs.FileMode, uid, gid int) (err error) {
	if err := CheckNodePath(p); err != nil {
		return err
	}
	hp := HostPath(hostRoot, p)
	dir := filepath.Dir(hp)
	tmp, err := createTemp(dir, filepath.Base(hp))
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err = tmp.Chmod(permBits(mode)); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if uid >= 0 || gid >= 0 {
		fi, serr := tmp.Stat()
		if serr != nil {
			return fmt.Errorf("write %s: %w", p, serr)
		}
		if sys, ok := fi.Sys().(*syscall.Stat_t); !ok || (uid >= 0 && int(sys.Uid) != uid) || (gid >= 0 && int(sys.Gid) != gid) {
			if err = tmp.Chown(uid, gid); err != nil {
				return fmt.Errorf("write %s: %w", p, err)
			}
		}
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err = os.Rename(tmpName, hp); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

func createTemp(dir, base string) (*os.File, error) {
	if len(base) > 100 {
		base = base[:100]
	}
	for range 100 {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		name := filepath.Join(dir, TempPrefix+base+"."+hex.EncodeToString(b[:])+".tmp")
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, errors.New("cannot create a temporary file")
}

// RemoveFile removes the file at node path p (already resolved) below hostRoot and fsyncs its
// directory. A missing file is not an error.
func RemoveFile(hostRoot, p string) error {
	if err := CheckNodePath(p); err != nil {
		return err
	}
	hp := HostPath(hostRoot, p)
	if err := os.Remove(hp); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove %s: %w", p, err)
	}
	if err := syncDir(filepath.Dir(hp)); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// MissingDirs returns the ancestors of node path p (already resolved) that do not exist below
// hostRoot, outermost first.
func MissingDirs(hostRoot, p string) ([]string, error) {
	var missing []string
	for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
		fi, err := os.Stat(HostPath(hostRoot, d))
		if err == nil {
			if !fi.IsDir() {
				return nil, fmt.Errorf("%s is not a directory", d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append([]string{d}, missing...)
	}
	return missing, nil
}

// MakeDirs creates the directories dirs (node paths, outermost first) below hostRoot with mode
// 0755 and fsyncs each parent.
func MakeDirs(hostRoot string, dirs []string) error {
	for _, d := range dirs {
		hp := HostPath(hostRoot, d)
		if err := os.Mkdir(hp, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create directory %s: %w", d, err)
		}
		if err := syncDir(filepath.Dir(hp)); err != nil {
			return fmt.Errorf("create directory %s: %w", d, err)
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
