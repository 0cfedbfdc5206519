package redact_test

// These tests check redaction against the analyzer. They live in an
// external test package because hack/check-deps.sh keeps the packages
// under capture/ (their tests included) from importing analyze.

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/trace-capture/trace-capture/analyze"
	"github.com/trace-capture/trace-capture/capture/redact"
)

func analyzeBundle(t *testing.T, path string) *analyze.Result {
	t.Helper()
	in, err := analyze.OpenInput(path)
	if err != nil {
		t.Fatal(err)
	}
	var opts analyze.Options
	in.ApplyManifest(&opts)
	res, err := analyze.Run(t.Context(), opts, in.Source())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// untokenize replaces every token in s (JSON text) by the value the
// mapping says it replaced, longest tokens first.
func untokenize(s string, m *redact.Mapping) string {
	entries := append([]redact.MappingEntry(nil), m.Entries...)
	sort.Slice(entries, func(i, j int) bool { return len(entries[i].Token) > len(entries[j].Token) })
	var pairs []string
	for _, e := range entries {
		o, _ := json.Marshal(e.Original)
		pairs = append(pairs, e.Token, string(o[1:len(o)-1]))
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// canonical sorts the lists of a result whose order depends on names
// (rows sorted by host, pod or message), so that two results that differ
// only in that order compare equal.
func canonical(t *testing.T, js string) string {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		t.Fatal(err)
	}
	sortList := func(l any) {
		a, _ := l.([]any)
		sort.Slice(a, func(i, j int) bool {
			x, _ := json.Marshal(a[i])
			y, _ := json.Marshal(a[j])
			return string(x) < string(y)
		})
	}
	sortList(v["clock_skew"])
	if k, ok := v["kubernetes"].(map[string]any); ok {
		sortList(k["pods"])
	}
	for _, key := range []string{"services", "errors"} {
		l, _ := v[key].([]any)
		for _, e := range l {
			if m, ok := e.(map[string]any); ok {
				sortList(m["instances"])
				sortList(m["messages"])
			}
		}
	}
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}

// sameResult compares two result texts line by line. Two lines also match
// when they hold the same key and one value is a prefix of the other of
// at least 100 bytes: analyze cuts long values (status messages,
// attributes) at 200 bytes, and a token is not as long as what it
// replaced, so the cut falls elsewhere.
func sameResult(a, b string) bool {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(al) != len(bl) {
		return false
	}
	for i := range al {
		if !sameLine(al[i], bl[i]) {
			return false
		}
	}
	return true
}

func sameLine(a, b string) bool {
	if a == b {
		return true
	}
	ka, va, ok1 := strings.Cut(a, `": "`)
	kb, vb, ok2 := strings.Cut(b, `": "`)
	if !ok1 || !ok2 || ka != kb {
		return false
	}
	va, vb = strings.TrimRight(va, `",`), strings.TrimRight(vb, `",`)
	if len(va) > len(vb) {
		va, vb = vb, va
	}
	return len(va) >= 100 && strings.HasPrefix(vb, va)
}

// firstDiff returns the first differing line of two texts.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if !sameLine(al[i], bl[i]) {
			return "line " + itoa(i+1) + ":\n  original: " + al[i] + "\n  redacted: " + bl[i]
		}
	}
	return "lengths differ: " + itoa(len(al)) + " vs " + itoa(len(bl)) + " lines"
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestAnalysisUnchanged redacts real captures and shows that analyze finds
// the same edges, slow paths, operations and percentiles in the redacted
// bundle; and that the whole result, with tokens mapped back through the
// mapping file, is the original result.
func TestAnalysisUnchanged(t *testing.T) {
	for _, tc := range redact.TestCases {
		t.Run(tc.Name, func(t *testing.T) {
			dir := t.TempDir()
			in, out, mappingPath, rep := redact.RedactCase(t, tc, dir, redact.TestKey)
			orig, red := analyzeBundle(t, in), analyzeBundle(t, out)
			if orig.Summary.Spans == 0 || orig.Summary.Spans != red.Summary.Spans || rep.Spans != orig.Summary.Spans {
				t.Fatalf("spans: original %d, redacted %d, report %d", orig.Summary.Spans, red.Summary.Spans, rep.Spans)
			}
			if len(orig.Edges) == 0 || len(orig.SlowPaths) == 0 {
				t.Fatalf("the original analysis has no edges (%d) or slow paths (%d)", len(orig.Edges), len(orig.SlowPaths))
			}
			orig.Summary.RecordBytes, red.Summary.RecordBytes = 0, 0 // the records are re-encoded
			if tc.Exact {
				for _, f := range []struct {
					name string
					a, b any
				}{
					{"summary", orig.Summary, red.Summary},
					{"edges", orig.Edges, red.Edges},
					{"loopback", orig.Loopback, red.Loopback},
					{"slow_paths", orig.SlowPaths, red.SlowPaths},
					{"operations", orig.Operations, red.Operations},
					{"root_operations", orig.RootOperations, red.RootOperations},
					{"kubernetes.apiserver", orig.Kubernetes.APIServer, red.Kubernetes.APIServer},
					{"kubernetes.etcd", orig.Kubernetes.Etcd, red.Kubernetes.Etcd},
					{"kubernetes.cri", orig.Kubernetes.CRI, red.Kubernetes.CRI},
				} {
					a, b := jsonOf(t, f.a), jsonOf(t, f.b)
					if a != b {
						t.Errorf("%s differ after redaction: %s", f.name, firstDiff(a, b))
					}
				}
			}
			// With the tokens mapped back, the whole result is the
			// original's.
			m, err := redact.ReadMapping(mappingPath)
			if err != nil {
				t.Fatal(err)
			}
			a, b := canonical(t, jsonOf(t, orig)), canonical(t, untokenize(jsonOf(t, red), m))
			if !sameResult(a, b) {
				t.Errorf("the redacted analysis, tokens mapped back, differs: %s", firstDiff(a, b))
			}
			if redJSON := jsonOf(t, red); strings.Contains(redJSON, "team-payments") || strings.Contains(redJSON, "tc-node") {
				t.Error("the analysis of the redacted bundle shows an original name")
			}
		})
	}
}
