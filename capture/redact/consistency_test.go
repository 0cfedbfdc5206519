package redact

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trace-capture/trace-capture/receiver"
	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
)

// TestSameNameSameToken: in a redacted real capture, namespace load-2
// and configmap cm-1 carry one token each, in every record and in every
// field they occur in (namespace attribute, request path, storage key,
// event text); across two runs with the same key the bundles and mappings
// are byte for byte the same; another key gives other tokens.
func TestSameNameSameToken(t *testing.T) {
	dir := t.TempDir()
	recs := readRecords(t, realCaptures[0])
	in := writeBundle(t, dir, "local", recs, []extraFile{{"logs/trace-capture.log", testLog}}, "")
	run := func(name string, key []byte) (string, string) {
		out, mapping := filepath.Join(dir, name+".tgz"), filepath.Join(dir, name+".mapping.json")
		if _, err := Bundle(t.Context(), in, out, Options{Key: key, MappingFile: mapping}); err != nil {
			t.Fatal(err)
		}
		return out, mapping
	}
	out1, map1 := run("one", testKey)
	out2, map2 := run("two", testKey)

	ns, cm := tok("ns", "load-2"), tok("name", "cm-1")
	seen := map[string]map[string]int{} // attribute key -> distinct tokens of load-2 / cm-1 seen in it
	records := 0
	if _, err := bundle.WalkFile(out1, bundle.Limits{}, bundle.WalkFuncs{
		Record: func(_ string, rec []byte) error {
			records++
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec)
			if err != nil {
				return err
			}
			forEachAttr(td, func(k string, v string) {
				for _, want := range []string{ns, cm} {
					if strings.Contains(v, want) {
						if seen[k] == nil {
							seen[k] = map[string]int{}
						}
						seen[k][want]++
					}
				}
				if strings.Contains(v, "load-2/") || strings.HasSuffix(v, "/load-2") || v == "load-2" {
					t.Errorf("%s=%q still names load-2", k, v)
				}
			})
			return nil
		},
	}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"namespace", "http.target", "url.path", "key"} {
		if seen[k][ns] == 0 {
			t.Errorf("token %s of namespace load-2 not found in %s (seen: %v)", ns, k, seen)
		}
	}
	for _, k := range []string{"name", "http.target", "key"} {
		if seen[k][cm] == 0 {
			t.Errorf("token %s of configmap cm-1 not found in %s (seen: %v)", cm, k, seen)
		}
	}
	if records < 10 {
		t.Fatalf("only %d records", records)
	}
	// The log, scrubbed, uses the same tokens.
	var log []byte
	if _, err := bundle.WalkFile(out1, bundle.Limits{}, bundle.WalkFuncs{File: func(e *bundle.Entry) error {
		var b bytes.Buffer
		_, err := b.ReadFrom(e)
		log = b.Bytes()
		return err
	}}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(log, []byte("namespace="+ns)) || !bytes.Contains(log, []byte("object="+cm)) {
		t.Errorf("the log does not use the spans' tokens:\n%s", log)
	}

	// Two runs with one key: the same bytes.
	for _, p := range [][2]string{{out1, out2}, {map1, map2}} {
		a, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p[1])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s and %s differ", filepath.Base(p[0]), filepath.Base(p[1]))
		}
	}
	m, err := ReadMapping(map1)
	if err != nil {
		t.Fatal(err)
	}
	byOriginal := map[string]string{}
	for _, e := range m.Entries {
		core := e.Token[strings.IndexByte(e.Token, '-')+1:]
		if prev, ok := byOriginal[e.Original]; ok && prev != core {
			t.Errorf("%q has two token hashes: %s and %s", e.Original, prev, core)
		}
		byOriginal[e.Original] = core
	}
	if byOriginal["load-2"] == "" || byOriginal["cm-1"] == "" {
		t.Fatalf("mapping lacks load-2 or cm-1: %d entries", len(m.Entries))
	}

	// Another key: other tokens; no key: a random one.
	other := []byte("another key of at least 16 bytes")
	out3, _ := run("three", other)
	all3 := allBytes(t, out3)
	if bytes.Contains(all3, []byte(ns)) || !bytes.Contains(all3, []byte(mustRewriter(t, other).Value("namespace", "load-2"))) {
		t.Error("a bundle redacted with another key uses the first key's tokens")
	}
	rep, err := Bundle(t.Context(), in, filepath.Join(dir, "four.tgz"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.KeySource != KeyRandom || rep.KeyFingerprint == KeyFingerprint(testKey) {
		t.Errorf("no key: report %+v", rep)
	}

	// A mapping file of another key is refused, not overwritten.
	if _, err := Bundle(t.Context(), in, filepath.Join(dir, "five.tgz"), Options{Key: other, MappingFile: map1}); err == nil || !strings.Contains(err.Error(), "another key") {
		t.Errorf("mapping of another key: %v", err)
	}
	if b, _ := os.ReadFile(map1); !bytes.Contains(b, []byte(ns)) {
		t.Error("the first mapping file was changed")
	}
}

func mustRewriter(t *testing.T, key []byte) *RecordRewriter {
	t.Helper()
	w, err := NewRecordRewriter(Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func forEachAttr(td ptrace.Traces, fn func(k, v string)) {
	visit := func(m pcommon.Map) {
		m.Range(func(k string, v pcommon.Value) bool {
			fn(k, v.AsString())
			return true
		})
	}
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		visit(rs.Resource().Attributes())
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			sps := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < sps.Len(); k++ {
				visit(sps.At(k).Attributes())
				for e := 0; e < sps.At(k).Events().Len(); e++ {
					visit(sps.At(k).Events().At(e).Attributes())
				}
			}
		}
	}
}

// TestStructureUnchanged: a rewritten record has the same ids, parents,
// times, kinds, status codes, services and span count, in the same order.
func TestStructureUnchanged(t *testing.T) {
	w := mustRewriter(t, testKey)
	for _, path := range append(realCaptures, sensitiveCapture) {
		for _, rec := range readRecords(t, path) {
			out, err := w.Rewrite(rec)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec)
			b, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(out)
			if err != nil {
				t.Fatal(err)
			}
			if sa, sb := structure(a), structure(b); sa != sb {
				t.Fatalf("%s: structure changed:\n%s\n%s", path, sa, sb)
			}
		}
	}
}

func structure(td ptrace.Traces) string {
	var b strings.Builder
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		svc, _ := rs.Resource().Attributes().Get("service.name")
		b.WriteString("R " + svc.AsString() + rs.SchemaUrl() + "\n")
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			b.WriteString(" S " + ss.Scope().Name() + " " + ss.Scope().Version() + "\n")
			for k := 0; k < ss.Spans().Len(); k++ {
				sp := ss.Spans().At(k)
				b.WriteString("  " + sp.TraceID().String() + " " + sp.SpanID().String() + " " + sp.ParentSpanID().String() + " " +
					sp.Kind().String() + " " + sp.Status().Code().String() + " " + sp.StartTimestamp().String() + " " +
					sp.EndTimestamp().String() + " " + sp.TraceState().AsRaw() + " ")
				b.WriteString(strings.Repeat("e", sp.Events().Len()) + strings.Repeat("l", sp.Links().Len()) + "\n")
			}
		}
	}
	return b.String()
}

// TestSink: the recording path. Requests are redacted before the next
// sink sees them, with the Batch scanned again (hosts as tokens) and the
// peer redacted; refusals are forwarded.
func TestSink(t *testing.T) {
	w := mustRewriter(t, testKey)
	next := &memSink{}
	s := w.Sink(next)
	recs := readRecords(t, realCaptures[1])
	for _, rec := range recs {
		res, err := receiver.Scan(rec, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Consume(context.Background(), rec, receiver.Batch{Transport: receiver.TransportGRPC, Peer: "203.0.113.3:4567", Resources: res}); err != nil {
			t.Fatal(err)
		}
	}
	if len(next.reqs) != len(recs) {
		t.Fatalf("next got %d requests, want %d", len(next.reqs), len(recs))
	}
	// The rewriter is safe for concurrent use (the receiver consumes
	// concurrently): the same requests again from four goroutines give
	// the same bytes.
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < len(recs); i += 4 {
				out, err := w.Rewrite(recs[i])
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(out, next.reqs[i]) {
					t.Errorf("request %d redacted differently the second time", i)
				}
			}
		}(g)
	}
	wg.Wait()
	hosts := map[string]bool{}
	for i, b := range next.batches {
		if b.Peer != tok("ip", "203.0.113.3")+":4567" {
			t.Fatalf("peer %q", b.Peer)
		}
		for _, r := range b.Resources {
			hosts[r.Host] = true
		}
		if bytes.Contains(next.reqs[i], []byte("tc-node")) || bytes.Contains(next.reqs[i], []byte("traced-pod-1\"")) {
			t.Fatalf("request %d still names tc-node or traced-pod-1", i)
		}
	}
	if !hosts[tok("host", "tc-node")] || hosts["tc-node"] {
		t.Errorf("batch hosts %v", hosts)
	}
	s.(receiver.RefusalCounter).CountRefusal(receiver.Refusal{Reason: receiver.ReasonTooLarge, Peer: "203.0.113.3:4567"})
	if len(next.refusals) != 1 || next.refusals[0].Peer != tok("ip", "203.0.113.3")+":4567" {
		t.Errorf("refusals %+v", next.refusals)
	}
	if _, err := s.(*sink).w.Rewrite([]byte("not protobuf \xff\xff")); err == nil {
		t.Error("an undecodable request was accepted")
	}
	if rep := w.Report(); rep.Records != 2*int64(len(recs)) || rep.UndecodableRecords != 1 || rep.Spans == 0 {
		t.Errorf("report %+v", rep)
	}
}

type memSink struct {
	reqs     [][]byte
	batches  []receiver.Batch
	refusals []receiver.Refusal
}

func (m *memSink) Consume(_ context.Context, req []byte, b receiver.Batch) error {
	m.reqs = append(m.reqs, bytes.Clone(req))
	m.batches = append(m.batches, b)
	return nil
}

func (m *memSink) CountRefusal(r receiver.Refusal) { m.refusals = append(m.refusals, r) }

// TestRedactFilesAndManifest: the recording path's finish: files and
// manifest redacted with the rewriter that redacted the spans.
func TestRedactFilesAndManifest(t *testing.T) {
	dir := t.TempDir()
	w := mustRewriter(t, testKey)
	w.Value("host.name", "tc-node")
	logPath := filepath.Join(dir, "log")
	binPath := filepath.Join(dir, "core")
	if err := os.WriteFile(logPath, []byte(testLog), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(binPath, []byte("\x7fELF\x00\x00binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	files, err := w.RedactFiles([]bundle.File{
		{Name: "spans/tc-node.tcspans", Path: "/archive"},
		{Name: "logs/trace-capture.log", Path: logPath},
		{Name: "nodes/tc-node/core", Path: binPath},
	}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Name != "spans/"+tok("host", "tc-node")+".tcspans" || files[0].Path != "/archive" || files[1].Name != "logs/trace-capture.log" {
		t.Fatalf("files %+v", files)
	}
	b, err := os.ReadFile(files[1].Path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("alice")) || bytes.Contains(b, []byte("198.51.100.40")) || !bytes.Contains(b, []byte("level=INFO")) {
		t.Errorf("log:\n%s", b)
	}
	m := &bundle.Manifest{
		Sources:  []bundle.Source{{Service: "kubelet", Host: "tc-node"}},
		Archives: []bundle.Archive{{Path: "spans/tc-node.tcspans", Host: "tc-node"}},
		Notes:    []string{"recorded on tc-node"},
		Cluster:  []byte(testCluster),
	}
	if err := w.RedactManifest(m); err != nil {
		t.Fatal(err)
	}
	h := tok("host", "tc-node")
	if m.Sources[0].Host != h || m.Archives[0].Host != h || m.Archives[0].Path != files[0].Name || m.Notes[0] != "recorded on "+h ||
		bytes.Contains(m.Cluster, []byte("worker-7")) || len(m.Redaction) == 0 {
		t.Errorf("manifest %+v\ncluster %s", m, m.Cluster)
	}
	rep := w.Report()
	if len(rep.Files) != 2 || rep.Files[0].Action != FileScrubbedText || rep.Files[1].Action != FileDropped {
		t.Errorf("files %+v", rep.Files)
	}
}
