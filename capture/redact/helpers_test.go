package redact

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trace-capture/trace-capture/receiver/archive"
	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
	"github.com/trace-capture/trace-capture/receiver/archive/otlpfile"
)

// realCaptures are the captures of real components in the shared testdata.
var realCaptures = []string{
	"../../testdata/apiserver-etcd.otlp.jsonl.gz",
	"../../testdata/kubelet-containerd-apiserver-etcd.otlp.jsonl.gz",
}

// testKey is a fixed key, so tokens are the same in every run.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// readRecords returns the protobuf records of a trace file.
func readRecords(t testing.TB, path string) [][]byte {
	t.Helper()
	var recs [][]byte
	if _, err := otlpfile.ReadFile(path, otlpfile.Options{}, func(rec []byte) error {
		recs = append(recs, bytes.Clone(rec))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return recs
}

// extraFile is a non-span file to put into a test bundle.
type extraFile struct {
	name, content string
}

// writeBundle writes a bundle holding recs in one archive (named archive,
// under spans/), the extra files, and a manifest whose sources are counted
// from the records. It returns the bundle's path.
func writeBundle(t testing.TB, dir, archiveName string, recs [][]byte, extra []extraFile, cluster string) string {
	t.Helper()
	apath := filepath.Join(dir, "in-archive"+archive.FileExtension)
	w, err := archive.Create(apath, archive.WriterOptions{FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ svc, host string }
	sources := map[key]*bundle.Source{}
	var spans int64
	var start, end time.Time
	for _, rec := range recs {
		if err := w.Append(rec); err != nil {
			t.Fatal(err)
		}
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			attrs := rs.Resource().Attributes()
			k := key{str(attrs, "service.name"), str(attrs, "host.name")}
			s := sources[k]
			if s == nil {
				s = &bundle.Source{Service: k.svc, Host: k.host}
				sources[k] = s
			}
			s.Requests++
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				sps := rs.ScopeSpans().At(j).Spans()
				s.Spans += int64(sps.Len())
				spans += int64(sps.Len())
				for x := 0; x < sps.Len(); x++ {
					st, en := sps.At(x).StartTimestamp().AsTime(), sps.At(x).EndTimestamp().AsTime()
					if start.IsZero() || st.Before(start) {
						start = st
					}
					if en.After(end) {
						end = en
					}
				}
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	m := &bundle.Manifest{
		Tool:     bundle.Tool{Name: "trace-capture", Version: "test"},
		Mode:     bundle.ModeLocal,
		Window:   bundle.Window{Start: start.UTC(), End: end.UTC()},
		Archives: []bundle.Archive{{Path: bundle.SpansDir + archiveName + archive.FileExtension, Records: st.Records, Spans: spans, RawBytes: st.RawBytes, Bytes: st.WrittenBytes}},
		Notes:    []string{"captured on tc-node by alice@example.com"},
	}
	if cluster != "" {
		m.Cluster = []byte(cluster)
	}
	for _, s := range sources {
		m.Sources = append(m.Sources, *s)
	}
	files := []bundle.File{{Name: m.Archives[0].Path, Path: apath}}
	for i, f := range extra {
		p := filepath.Join(dir, "extra-"+string(rune('a'+i)))
		if err := os.WriteFile(p, []byte(f.content), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, bundle.File{Name: f.name, Path: p})
	}
	out := filepath.Join(dir, "in.tgz")
	if err := bundle.WriteFile(out, m, files); err != nil {
		t.Fatal(err)
	}
	return out
}

func str(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

// allBytes returns every byte a bundle holds, decompressed: the tar
// stream (headers, manifest, files) followed by the decompressed content
// of each span archive.
func allBytes(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	out := bytes.Clone(raw)
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.Name...)
		if !strings.HasPrefix(h.Name, bundle.SpansDir) || h.Typeflag != tar.TypeReg {
			continue
		}
		if err := archive.ForEach(tr, archive.ReaderOptions{}, func(rec []byte) error {
			out = append(out, rec...)
			return nil
		}); err != nil {
			t.Fatalf("read %s: %v", h.Name, err)
		}
	}
	return out
}

// containsWord reports whether b holds s not glued to letters, digits or
// '-' on either side (so "cm-1" is not found in "cm-10", nor "s-1" in
// "ns-1a2b...", nor "system" in "kube-system").
func containsWord(b []byte, s string) bool { return indexWord(b, s) >= 0 }

func indexWord(b []byte, s string) int {
	glued := func(c byte) bool { return isAlnum(c) || c == '-' }
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte(s))
		if i < 0 {
			return -1
		}
		i += off
		end := i + len(s)
		if (i == 0 || !glued(b[i-1]) || !glued(s[0])) && (end == len(b) || !glued(b[end]) || !glued(s[len(s)-1])) {
			return i
		}
		off = i + 1
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
