package journal

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeHost writes a file at node path p below root, creating its folders.
func writeHost(t *testing.T, root, p string, data []byte, mode fs.FileMode) {
	t.Helper()
	hp := HostPath(root, p)
	if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hp, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(hp, mode); err != nil {
		t.Fatal(err)
	}
}

func readHost(t *testing.T, root, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(HostPath(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// snapshot records every path below root with its mode and content, for "nothing left behind".
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + SHA256(b)
		}
		m[strings.TrimPrefix(p, root)] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func diffSnapshots(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s: before %q, after %q", p, v, after[p])
		}
	}
	for p, v := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s left behind (%s)", p, v)
		}
	}
}

func newStore(t *testing.T, root string) *Store {
	t.Helper()
	n := 0
	s, err := NewStore(root, Options{Now: func() time.Time {
		n++
		return time.Date(2026, 11, 25, 12, 0, n, 0, time.UTC)
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// change records a file in the journal and then changes it, as enable.Apply does.
func change(t *testing.T, s *Store, component string, files map[string][]byte) Record {
	t.Helper()
	root := s.HostRoot()
	var rf []File
	for _, p := range sortedKeys(files) {
		st, err := ReadFile(root, p)
		if err != nil {
			t.Fatal(err)
		}
		f := File{Path: p, Existed: st.Exists, NewSHA256: SHA256(files[p]), Mode: 0o644, UID: -1, GID: -1}
		if st.Exists {
			f.Original, f.OriginalSHA256, f.Mode, f.UID, f.GID = st.Data, st.SHA256, st.Mode, st.UID, st.GID
		} else {
			dirs, err := MissingDirs(root, p)
			if err != nil {
				t.Fatal(err)
			}
			f.CreatedDirs = dirs
		}
		rf = append(rf, f)
	}
	rec, err := s.Create(t.Context(), Record{Component: component, RunID: "run-1", Node: "cp-1", Files: rf})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rf {
		if err := MakeDirs(root, f.CreatedDirs); err != nil {
			t.Fatal(err)
		}
		if err := WriteFileAtomic(root, f.Path, files[f.Path], f.Mode, f.UID, f.GID); err != nil {
			t.Fatal(err)
		}
	}
	return rec
}

func sortedKeys(m map[string][]byte) []string {
	var k []string
	for p := range m {
		k = append(k, p)
	}
	for i := range k {
		for j := i + 1; j < len(k); j++ {
			if k[j] < k[i] {
				k[i], k[j] = k[j], k[i]
			}
		}
	}
	return k
}

func TestRecordRoundTrip(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	orig := []byte("apiVersion: v1\nkind: Pod\n")
	rec, err := s.Create(t.Context(), Record{Component: "kube-apiserver", Files: []File{{
		Path: "/etc/kubernetes/manifests/kube-apiserver.yaml", Existed: true, Original: orig,
		OriginalSHA256: SHA256(orig), Mode: 0o600, UID: 0, GID: 0, NewSHA256: SHA256([]byte("x")),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID != "20261125T120001.000000000Z-kube-apiserver" {
		t.Errorf("ID = %q", rec.ID)
	}
	fi, err := os.Stat(HostPath(root, s.RecordPath(rec.ID)))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("record mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := s.Load(t.Context(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Files[0].Original, orig) || got.Kind != Kind || got.Version != Version {
		t.Errorf("loaded %+v", got)
	}
	// A second record with the same time gets a distinct ID.
	s2, _ := NewStore(root, Options{Now: func() time.Time { return time.Date(2026, 11, 25, 12, 0, 1, 0, time.UTC) }})
	rec2, err := s2.Create(t.Context(), Record{Component: "kube-apiserver"})
	if err != nil {
		t.Fatal(err)
	}
	if rec2.ID != rec.ID+"-2" {
		t.Errorf("second ID = %q", rec2.ID)
	}
	list, err := s.List(t.Context())
	if err != nil || len(list) != 2 || list[0].ID != rec.ID {
		t.Fatalf("List = %v, %v", list, err)
	}
	if err := s.Delete(t.Context(), rec.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), rec.ID); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
	if list, _ := s.List(t.Context()); len(list) != 1 {
		t.Errorf("after delete: %d records", len(list))
	}
}

func TestRestoreIsByteExactAndIdempotent(t *testing.T) {
	root := t.TempDir()
	writeHost(t, root, "/etc/kubernetes/manifests/etcd.yaml", []byte("orig etcd\n"), 0o600)
	writeHost(t, root, "/var/lib/kubelet/config.yaml", []byte("orig kubelet\n"), 0o644)
	before := snapshot(t, root)
	s := newStore(t, root)
	change(t, s, "etcd", map[string][]byte{"/etc/kubernetes/manifests/etcd.yaml": []byte("new etcd\n")})
	change(t, s, "crio", map[string][]byte{"/etc/crio/crio.conf.d/99-trace-capture.conf": []byte("[crio.tracing]\n")})
	change(t, s, "kubelet", map[string][]byte{"/var/lib/kubelet/config.yaml": []byte("new kubelet\n")})
	if got := readHost(t, root, "/etc/crio/crio.conf.d/99-trace-capture.conf"); string(got) != "[crio.tracing]\n" {
		t.Fatalf("drop-in = %q", got)
	}

	// A write interrupted by a crash left a temporary (dot) file next to the manifest, and one
	// in the journal.
	writeHost(t, root, "/etc/kubernetes/manifests/"+TempPrefix+"etcd.yaml.0a1b2c.tmp", []byte("partial"), 0o600)
	writeHost(t, root, DefaultDir+"/"+TempPrefix+"x.json.0a1b2c.tmp", []byte("partial"), 0o600)

	rep, err := s.Restore(t.Context(), RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Complete() || len(rep.Records) != 3 {
		t.Fatalf("report %+v", rep)
	}
	// Newest first.
	if rep.Records[0].Component != "kubelet" || rep.Records[2].Component != "etcd" {
		t.Errorf("order: %s, %s, %s", rep.Records[0].Component, rep.Records[1].Component, rep.Records[2].Component)
	}
	for _, r := range rep.Records {
		if !r.Changed {
			t.Errorf("%s: Changed = false", r.Component)
		}
	}
	if rep.Records[1].Files[0].Outcome != Removed {
		t.Errorf("drop-in outcome %s", rep.Records[1].Files[0].Outcome)
	}
	// An emptied journal is removed with its folder (the default one's parent included).
	if err := s.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	diffSnapshots(t, before, snapshot(t, root))

	rep, err = s.Restore(t.Context(), RestoreOptions{})
	if err != nil || len(rep.Records) != 0 {
		t.Errorf("second restore: %+v, %v", rep, err)
	}
}

func TestCleanupKeepsAJournalInUse(t *testing.T) {
	root := t.TempDir()
	writeHost(t, root, "/etc/a", []byte("a"), 0o644)
	s := newStore(t, root)
	change(t, s, "a", map[string][]byte{"/etc/a": []byte("A")})
	if err := s.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if list, err := s.List(t.Context()); err != nil || len(list) != 1 {
		t.Fatalf("records after cleanup: %v %v", list, err)
	}
	// A journal elsewhere never takes its parent with it.
	other, _ := NewStore(root, Options{Dir: "/etc/tc-journal"})
	if _, err := other.Create(t.Context(), Record{Component: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := other.Delete(t.Context(), mustOnlyID(t, other)); err != nil {
		t.Fatal(err)
	}
	if err := other.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(HostPath(root, "/etc/tc-journal")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty journal kept: %v", err)
	}
	if _, err := os.Stat(HostPath(root, "/etc/a")); err != nil {
		t.Errorf("parent touched: %v", err)
	}
}

func mustOnlyID(t *testing.T, s *Store) string {
	t.Helper()
	list, err := s.List(t.Context())
	if err != nil || len(list) != 1 {
		t.Fatalf("list %v %v", list, err)
	}
	return list[0].ID
}

func TestRestoreAfterCrashBeforeChange(t *testing.T) {
	// The record was written but the process died before changing the file: restoring finds
	// the original and only drops the record.
	root := t.TempDir()
	writeHost(t, root, "/etc/a.conf", []byte("a\n"), 0o644)
	s := newStore(t, root)
	_, err := s.Create(t.Context(), Record{Component: "x", Files: []File{{
		Path: "/etc/a.conf", Existed: true, Original: []byte("a\n"), OriginalSHA256: SHA256([]byte("a\n")),
		Mode: 0o644, UID: -1, GID: -1, NewSHA256: SHA256([]byte("b\n")),
	}, {
		Path: "/etc/new.d/b.conf", NewSHA256: SHA256([]byte("b\n")), Mode: 0o644, UID: -1, GID: -1,
		CreatedDirs: []string{"/etc/new.d"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Restore(t.Context(), RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Records[0]
	if r.Changed || !r.Complete || r.Files[0].Outcome != Unchanged || r.Files[1].Outcome != Unchanged {
		t.Errorf("report %+v", r)
	}
}

func TestRestoreReportsFailureAndKeepsOnlyThatFile(t *testing.T) {
	root := t.TempDir()
	writeHost(t, root, "/etc/kubernetes/manifests/kube-apiserver.yaml", []byte("orig apiserver\n"), 0o600)
	writeHost(t, root, "/etc/kubernetes/manifests/etcd.yaml", []byte("orig etcd\n"), 0o600)
	writeHost(t, root, "/var/lib/kubelet/config.yaml", []byte("orig kubelet\n"), 0o644)
	s := newStore(t, root)
	rec := change(t, s, "kube-apiserver", map[string][]byte{
		"/etc/kubernetes/manifests/kube-apiserver.yaml":        []byte("new apiserver\n"),
		"/etc/kubernetes/trace-capture-apiserver-tracing.yaml": []byte("tracing\n"),
	})
	change(t, s, "etcd", map[string][]byte{"/etc/kubernetes/manifests/etcd.yaml": []byte("new etcd\n")})
	change(t, s, "kubelet", map[string][]byte{"/var/lib/kubelet/config.yaml": []byte("new kubelet\n")})

	// Someone edits the apiserver manifest during the window; someone else replaces the etcd
	// manifest with a directory, so it cannot be read at all.
	writeHost(t, root, "/etc/kubernetes/manifests/kube-apiserver.yaml", []byte("edited by an admin\n"), 0o600)
	etcd := HostPath(root, "/etc/kubernetes/manifests/etcd.yaml")
	os.Remove(etcd)
	if err := os.Mkdir(etcd, 0o755); err != nil {
		t.Fatal(err)
	}

	rep, err := s.Restore(t.Context(), RestoreOptions{})
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, ErrConflict) {
		t.Errorf("error %v does not wrap ErrConflict", err)
	}
	if !strings.Contains(err.Error(), "etcd.yaml") || !strings.Contains(err.Error(), "kube-apiserver.yaml") {
		t.Errorf("error does not name both files: %v", err)
	}
	if rep.Complete() {
		t.Error("report says complete")
	}
	// The kubelet config and the tracing file were restored nonetheless.
	if got := readHost(t, root, "/var/lib/kubelet/config.yaml"); string(got) != "orig kubelet\n" {
		t.Errorf("kubelet config = %q", got)
	}
	if _, err := os.Stat(HostPath(root, "/etc/kubernetes/trace-capture-apiserver-tracing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("tracing file still there: %v", err)
	}
	// The journal keeps exactly the two unverified files.
	list, err := s.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, r := range list {
		for _, f := range r.Files {
			kept = append(kept, r.Component+":"+f.Path)
		}
	}
	want := []string{"kube-apiserver:/etc/kubernetes/manifests/kube-apiserver.yaml", "etcd:/etc/kubernetes/manifests/etcd.yaml"}
	if strings.Join(kept, ",") != strings.Join(want, ",") {
		t.Errorf("journal keeps %v, want %v", kept, want)
	}
	if list[0].ID != rec.ID {
		t.Errorf("record id changed: %s", list[0].ID)
	}

	// Once the directory is gone, a forced restore finishes the job and empties the journal.
	os.Remove(etcd)
	rep, err = s.Restore(t.Context(), RestoreOptions{Force: true})
	if err != nil || !rep.Complete() {
		t.Fatalf("forced restore: %+v, %v", rep, err)
	}
	if got := readHost(t, root, "/etc/kubernetes/manifests/kube-apiserver.yaml"); string(got) != "orig apiserver\n" {
		t.Errorf("apiserver manifest = %q", got)
	}
	if got := readHost(t, root, "/etc/kubernetes/manifests/etcd.yaml"); string(got) != "orig etcd\n" {
		t.Errorf("etcd manifest = %q", got)
	}
	if list, _ := s.List(t.Context()); len(list) != 0 {
		t.Errorf("%d records left", len(list))
	}
}

func TestRestoreKeepsModeAndOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	root := t.TempDir()
	p := "/etc/sysconfig/containerd"
	writeHost(t, root, p, []byte("A=1\n"), 0o640)
	if err := os.Chown(HostPath(root, p), 123, 456); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, root)
	change(t, s, "containerd", map[string][]byte{p: []byte("A=1\nB=2\n")})
	check := func(when string) {
		fi, err := os.Stat(HostPath(root, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o640 || st.Uid != 123 || st.Gid != 456 {
			t.Errorf("%s: mode %v owner %d:%d", when, fi.Mode().Perm(), st.Uid, st.Gid)
		}
	}
	check("changed")
	if _, err := s.Restore(t.Context(), RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	check("restored")
}

func TestRestoreLeavesSharedCreatedDirectory(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	change(t, s, "containerd", map[string][]byte{"/etc/systemd/system/containerd.service.d/99-trace-capture.conf": []byte("[Service]\n")})
	// Someone else adds a drop-in to the folder we created.
	writeHost(t, root, "/etc/systemd/system/containerd.service.d/10-other.conf", []byte("x"), 0o644)
	rep, err := s.Restore(t.Context(), RestoreOptions{})
	if err != nil || !rep.Complete() {
		t.Fatalf("%+v %v", rep, err)
	}
	if _, err := os.Stat(HostPath(root, "/etc/systemd/system/containerd.service.d/10-other.conf")); err != nil {
		t.Errorf("other drop-in: %v", err)
	}
	if _, err := os.Stat(HostPath(root, "/etc/systemd/system/containerd.service.d/99-trace-capture.conf")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("our drop-in: %v", err)
	}
}

func TestRestoreSelectsByRunAndID(t *testing.T) {
	root := t.TempDir()
	writeHost(t, root, "/etc/a", []byte("a"), 0o644)
	writeHost(t, root, "/etc/b", []byte("b"), 0o644)
	s := newStore(t, root)
	ra := change(t, s, "a", map[string][]byte{"/etc/a": []byte("A")})
	change(t, s, "b", map[string][]byte{"/etc/b": []byte("B")})
	rep, err := s.Restore(t.Context(), RestoreOptions{IDs: []string{ra.ID}})
	if err != nil || len(rep.Records) != 1 || rep.Records[0].ID != ra.ID {
		t.Fatalf("%+v %v", rep, err)
	}
	if got := readHost(t, root, "/etc/b"); string(got) != "B" {
		t.Errorf("/etc/b restored too early: %q", got)
	}
	rep, err = s.Restore(t.Context(), RestoreOptions{RunID: "another-run"})
	if err != nil || len(rep.Records) != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	rep, err = s.Restore(t.Context(), RestoreOptions{RunID: "run-1"})
	if err != nil || len(rep.Records) != 1 || string(readHost(t, root, "/etc/b")) != "b" {
		t.Fatalf("%+v %v", rep, err)
	}
}

func TestRestoreStopsOnCancelledContext(t *testing.T) {
	root := t.TempDir()
	writeHost(t, root, "/etc/a", []byte("a"), 0o644)
	s := newStore(t, root)
	change(t, s, "a", map[string][]byte{"/etc/a": []byte("A")})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Restore(ctx, RestoreOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if list, _ := s.List(t.Context()); len(list) != 1 {
		t.Errorf("record dropped although nothing was restored")
	}
	if _, err := s.Restore(t.Context(), RestoreOptions{}); err != nil || string(readHost(t, root, "/etc/a")) != "a" {
		t.Errorf("later restore: %v", err)
	}
}

func TestResolveInsideHostRoot(t *testing.T) {
	root := t.TempDir()
	writeHost(t, root, "/data/kubelet/config.yaml", []byte("x"), 0o644)
	writeHost(t, root, "/data/real.conf", []byte("y"), 0o644)
	if err := os.MkdirAll(HostPath(root, "/var/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Absolute links are relative to the host root, not to this process's root.
	if err := os.Symlink("/data/kubelet", HostPath(root, "/var/lib/kubelet")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../real.conf", HostPath(root, "/data/kubelet/link.conf")); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"/var/lib/kubelet/config.yaml":   "/data/kubelet/config.yaml",
		"/var/lib/kubelet/link.conf":     "/data/real.conf",
		"/var/lib/kubelet/missing/x.yml": "/data/kubelet/missing/x.yml",
		"/nothing/here":                  "/nothing/here",
	} {
		got, err := Resolve(root, in)
		if err != nil || got != want {
			t.Errorf("Resolve(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	if err := os.Symlink("loop", HostPath(root, "/data/loop")); err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(root, "/data/loop/x"); err == nil {
		t.Error("symlink loop resolved")
	}
	if _, err := Resolve(root, "relative/path"); err == nil {
		t.Error("relative path accepted")
	}
}

func TestWriteFileAtomicLeavesNoTemporaryFile(t *testing.T) {
	root := t.TempDir()
	writeHost(t, root, "/etc/kubernetes/manifests/etcd.yaml", []byte("old"), 0o600)
	if err := WriteFileAtomic(root, "/etc/kubernetes/manifests/etcd.yaml", []byte("new"), 0o600, -1, -1); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(HostPath(root, "/etc/kubernetes/manifests"))
	if len(entries) != 1 || entries[0].Name() != "etcd.yaml" {
		t.Errorf("folder holds %v", entries)
	}
	// Writing into a missing folder fails and leaves nothing.
	if err := WriteFileAtomic(root, "/etc/missing/x", []byte("x"), 0o644, -1, -1); err == nil {
		t.Error("write into a missing folder succeeded")
	}
}

func TestTemporaryFileIsADotFile(t *testing.T) {
	dir := t.TempDir()
	f, err := createTemp(dir, "kube-apiserver.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	f.Close()
	// The kubelet loads every file in its static-pod folder whose name does not start with a dot.
	if base := filepath.Base(f.Name()); !strings.HasPrefix(base, ".") {
		t.Errorf("temporary file %q is not a dot-file", base)
	}
}

func TestDecodeRejectsBadRecords(t *testing.T) {
	good := Record{Kind: Kind, Version: Version, ID: "r1", Files: []File{{
		Path: "/etc/a", Existed: true, Original: []byte("a"), OriginalSHA256: SHA256([]byte("a")),
		Mode: 0o644, NewSHA256: SHA256([]byte("b")),
	}}}
	b, err := Encode(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(b); err != nil {
		t.Fatalf("good record: %v", err)
	}
	for name, mutate := range map[string]func(r *Record){
		"kind":          func(r *Record) { r.Kind = "other" },
		"version":       func(r *Record) { r.Version = 2 },
		"id":            func(r *Record) { r.ID = "../x" },
		"relative path": func(r *Record) { r.Files[0].Path = "etc/a" },
		"unclean path":  func(r *Record) { r.Files[0].Path = "/etc/../a" },
		"checksum":      func(r *Record) { r.Files[0].Original = []byte("tampered") },
		"new checksum":  func(r *Record) { r.Files[0].NewSHA256 = "xyz" },
		"duplicate":     func(r *Record) { r.Files = append(r.Files, r.Files[0]) },
		"created dir":   func(r *Record) { r.Files[0].CreatedDirs = []string{"/var"} },
		"mode":          func(r *Record) { r.Files[0].Mode = fs.ModeDir | 0o755 },
		"not existed":   func(r *Record) { r.Files[0].Existed = false },
	} {
		r := good
		r.Files = append([]File(nil), good.Files...)
		mutate(&r)
		if err := r.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, data := range map[string]string{
		"trailing": string(b) + "{}",
		"unknown":  strings.Replace(string(b), `"kind"`, `"extra": 1, "kind"`, 1),
		"empty":    "",
	} {
		if _, err := Decode([]byte(data)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := Encode(Record{Kind: Kind, Version: Version, ID: "r1", Files: []File{{
		Path: "/etc/a", Existed: true, Original: []byte("a"), OriginalSHA256: SHA256([]byte("a")),
		Mode: 0o644, NewSHA256: SHA256([]byte("b")), CreatedDirs: nil,
	}, {Path: "/etc/d/b", NewSHA256: SHA256(nil), CreatedDirs: []string{"/etc/d"}}}})
	f.Add(good)
	f.Add([]byte(`{"kind":"trace-capture.journal","version":1,"id":"x","files":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data)
		if err != nil {
			return
		}
		// Whatever decodes is valid and survives a round trip.
		if err := r.Validate(); err != nil {
			t.Fatalf("decoded an invalid record: %v", err)
		}
		b, err := Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(r2.Files) != len(r.Files) || r2.ID != r.ID {
			t.Fatal("round trip changed the record")
		}
	})
}
