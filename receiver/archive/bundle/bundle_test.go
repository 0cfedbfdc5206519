package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/trace-capture/trace-capture/receiver/archive"
)

func writeArchive(t *testing.T, path string, recs ...string) {
	t.Helper()
	w, err := archive.Create(path, archive.WriterOptions{FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Append([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func testManifest() *Manifest {
	end := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return &Manifest{
		Tool:   Tool{Name: "trace-capture", Version: "test"},
		Mode:   ModeLocal,
		Window: Window{Start: end.Add(-time.Minute), End: end},
		Sources: []Source{
			{Service: "etcd", Requests: 1, Spans: 3, Bytes: 30},
			{Service: "apiserver", Requests: 2, Spans: 5, Bytes: 50, Dropped: []Drop{{Reason: "budget", Spans: 7}}},
		},
		Archives: []Archive{{Path: "spans/local.tcspans", Records: 2, Spans: 8}},
		Notes:    []string{"hello"},
	}
}

func TestWriteWalkRoundTrip(t *testing.T) {
	dir := t.TempDir()
	arch := filepath.Join(dir, "a.tcspans")
	writeArchive(t, arch, "one", "two")
	logf := filepath.Join(dir, "log")
	if err := os.WriteFile(logf, []byte("log line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bundle.tgz")
	m := testManifest()
	files := []File{{Name: "spans/local.tcspans", Path: arch}, {Name: "logs/trace-capture.log", Path: logf}}
	if err := WriteFile(out, m, files); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bundle file: %v %v", fi, err)
	}
	var recs []string
	var logs string
	got, err := WalkFile(out, Limits{}, WalkFuncs{
		Record: func(p string, rec []byte) error { recs = append(recs, p+"="+string(rec)); return nil },
		Truncated: func(p string, err error) {
			t.Errorf("unexpected truncation of %s: %v", p, err)
		},
		File: func(e *Entry) error {
			b, err := io.ReadAll(e)
			logs += e.Name + ":" + string(b)
			return err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "spans/local.tcspans=one,spans/local.tcspans=two"; strings.Join(recs, ",") != want {
		t.Fatalf("records %q", recs)
	}
	if logs != "logs/trace-capture.log:log line\n" {
		t.Fatalf("files %q", logs)
	}
	if got.SchemaVersion != SchemaVersion || got.Sources[0].Service != "apiserver" || got.TotalSpans() != 8 || got.TotalDropped() != 7 {
		t.Fatalf("manifest %+v", got)
	}
	if len(got.Files) != 1 || got.Files[0] != "logs/trace-capture.log" {
		t.Fatalf("files %v", got.Files)
	}

	// Equal inputs give equal bytes.
	out2 := filepath.Join(dir, "bundle2.tgz")
	if err := WriteFile(out2, testManifest(), files); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(out2)
	if !bytes.Equal(a, b) {
		t.Fatal("bundle bytes differ between two equal writes")
	}
}

func TestWriteRefusesInconsistentInput(t *testing.T) {
	dir := t.TempDir()
	arch := filepath.Join(dir, "a")
	writeArchive(t, arch, "x")
	for name, files := range map[string][]File{
		"unlisted archive": {{Name: "spans/other.tcspans", Path: arch}},
		"missing archive":  {},
		"traversal":        {{Name: "../evil", Path: arch}},
		"duplicate":        {{Name: "spans/local.tcspans", Path: arch}, {Name: "spans/local.tcspans", Path: arch}},
	} {
		if err := Write(io.Discard, testManifest(), files); err == nil {
			t.Errorf("%s: Write accepted it", name)
		}
	}
}

func TestTruncatedArchiveInBundle(t *testing.T) {
	dir := t.TempDir()
	arch := filepath.Join(dir, "a")
	w, err := archive.Create(arch, archive.WriterOptions{FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"one", "two", "three"} {
		_ = w.Append([]byte(r))
	}
	if err := w.Flush(); err != nil { // as if killed right after a flush
		t.Fatal(err)
	}
	m := testManifest()
	var buf bytes.Buffer
	if err := Write(&buf, m, []File{{Name: "spans/local.tcspans", Path: arch}}); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	var n int
	var truncated []string
	if _, err := Walk(&buf, Limits{}, WalkFuncs{
		Record:    func(string, []byte) error { n++; return nil },
		Truncated: func(p string, err error) { truncated = append(truncated, p) },
	}); err != nil {
		t.Fatal(err)
	}
	if n != 3 || len(truncated) != 1 {
		t.Fatalf("records %d, truncated %v", n, truncated)
	}
}

// rawBundle builds a gzip'd tar from hand-made headers, for hostile cases.
func rawBundle(t *testing.T, entries []tar.Header, bodies []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for i := range entries {
		h := entries[i]
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(bodies[i]))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, bodies[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

const okManifest = `{"schema_version":1,"mode":"local","window":{"start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:01:00Z"},"sources":[],"archives":[]}`

func TestHostileBundles(t *testing.T) {
	reg := func(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600} }
	cases := []struct {
		name    string
		data    []byte
		lim     Limits
		wantErr string
	}{
		{"not gzip", []byte("hello world"), Limits{}, "not gzip"},
		{"empty", nil, Limits{}, "not gzip"},
		{"gzip not tar", func() []byte {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write([]byte(strings.Repeat("x", 2000)))
			zw.Close()
			return b.Bytes()
		}(), Limits{}, "not a tar"},
		{"manifest not first", rawBundle(t, []tar.Header{reg("spans/a"), reg(ManifestName)}, []string{"x", okManifest}), Limits{}, "first entry"},
		{"bad manifest json", rawBundle(t, []tar.Header{reg(ManifestName)}, []string{"{"}), Limits{}, "manifest"},
		{"newer schema", rawBundle(t, []tar.Header{reg(ManifestName)}, []string{`{"schema_version":99}`}), Limits{}, "newer"},
		{"traversal", rawBundle(t, []tar.Header{reg(ManifestName), reg("../../etc/passwd")}, []string{okManifest, "x"}), Limits{}, "escapes"},
		{"absolute", rawBundle(t, []tar.Header{reg(ManifestName), reg("/etc/passwd")}, []string{okManifest, "x"}), Limits{}, "absolute"},
		{"symlink", rawBundle(t, []tar.Header{reg(ManifestName), {Name: "logs/x", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}, []string{okManifest, ""}), Limits{}, "only regular"},
		{"hardlink", rawBundle(t, []tar.Header{reg(ManifestName), {Name: "logs/x", Typeflag: tar.TypeLink, Linkname: "manifest.json"}}, []string{okManifest, ""}), Limits{}, "only regular"},
		{"device", rawBundle(t, []tar.Header{reg(ManifestName), {Name: "logs/x", Typeflag: tar.TypeChar}}, []string{okManifest, ""}), Limits{}, "only regular"},
		{"manifest lists traversal", rawBundle(t, []tar.Header{reg(ManifestName)}, []string{`{"schema_version":1,"archives":[{"path":"../x"}]}`}), Limits{}, "escapes"},
		{"too many entries", rawBundle(t, []tar.Header{reg(ManifestName), reg("a"), reg("b"), reg("c")}, []string{okManifest, "1", "2", "3"}), Limits{MaxEntries: 3}, "entries"},
		{"bomb", rawBundle(t, []tar.Header{reg(ManifestName), reg("logs/zeros")}, []string{okManifest, strings.Repeat("\x00", 1<<20)}), Limits{MaxTotalBytes: 1 << 19}, "limit"},
		{"big entry", rawBundle(t, []tar.Header{reg(ManifestName), reg("logs/zeros")}, []string{okManifest, strings.Repeat("\x00", 4096)}), Limits{MaxEntryBytes: 1000}, "limit"},
		{"corrupt archive", rawBundle(t, []tar.Header{reg(ManifestName), reg("spans/a.tcspans")}, []string{okManifest, "not an archive"}), Limits{}, "not a trace-capture span archive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Walk(bytes.NewReader(tc.data), tc.lim, WalkFuncs{
				Record: func(string, []byte) error { return nil },
				File:   func(e *Entry) error { _, err := io.Copy(io.Discard, e); return err },
			})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzReader(f *testing.F) {
	dir := f.TempDir()
	arch := filepath.Join(dir, "a")
	w, _ := archive.Create(arch, archive.WriterOptions{FlushInterval: -1})
	_ = w.Append([]byte("record"))
	_ = w.Close()
	var buf bytes.Buffer
	if err := Write(&buf, testManifest(), []File{{Name: "spans/local.tcspans", Path: arch}}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxEntries: 100, MaxTotalBytes: 8 << 20, MaxEntryBytes: 4 << 20, MaxManifestBytes: 1 << 20, MaxRecordSize: 1 << 20}
		_, err := Walk(bytes.NewReader(data), lim, WalkFuncs{
			Record: func(string, []byte) error { return nil },
			File: func(e *Entry) error {
				n, err := io.Copy(io.Discard, e)
				if n > lim.MaxEntryBytes {
					return fmt.Errorf("entry of %d bytes passed the limit", n)
				}
				return err
			},
		})
		if err != nil && strings.Contains(err.Error(), "passed the limit") {
			t.Fatal(err)
		}
		_ = errors.Unwrap(err)
	})
}
