package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trace-capture/trace-capture/analyze"
)

var update = flag.Bool("update", false, "update golden files")

// goldenOpts are the fixed options of every golden page: the report never
// reads the clock, so the pages are byte-stable.
var goldenOpts = HTMLOptions{
	Title:       "trace-capture report",
	GeneratedAt: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC),
	ToolVersion: "v0.0.0-test",
}

// readInput decodes testdata/<case>.input.json strictly, so a golden input
// that no longer matches analyze.Result fails loudly instead of rendering
// half a report.
func readInput(t testing.TB, path string) *analyze.Result {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r analyze.Result
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return &r
}

func inputCases(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.input.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no testdata/*.input.json")
	}
	return paths
}

func caseName(path string) string {
	return strings.TrimSuffix(filepath.Base(path), ".input.json")
}

// checkGolden compares got with the golden file, or rewrites it with
// -update. A mismatch reports the first differing line.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl := strings.Split(string(got), "\n")
	wl := strings.Split(string(want), "\n")
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs at line %d (run go test ./report -update and review the diff):\n got: %.300q\nwant: %.300q", path, i+1, g, w)
		}
	}
	t.Fatalf("%s differs", path)
}

func TestGolden(t *testing.T) {
	for _, in := range inputCases(t) {
		name := caseName(in)
		t.Run(name, func(t *testing.T) {
			r := readInput(t, in)

			var js bytes.Buffer
			if err := WriteJSON(&js, r); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", name+".golden.json"), js.Bytes())

			// The JSON report must decode back to the same Result.
			var back analyze.Result
			if err := json.Unmarshal(js.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			var again bytes.Buffer
			if err := WriteJSON(&again, &back); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(js.Bytes(), again.Bytes()) {
				t.Error("WriteJSON output does not round-trip through analyze.Result")
			}

			var page bytes.Buffer
			if err := WriteHTML(&page, r, goldenOpts); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", name+".golden.html"), page.Bytes())

			// Rendering twice gives the same bytes.
			var page2 bytes.Buffer
			if err := WriteHTML(&page2, r, goldenOpts); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(page.Bytes(), page2.Bytes()) {
				t.Error("WriteHTML is not deterministic")
			}
			checkSelfContained(t, page.String())
		})
	}
}

// checkSelfContained fails when the page refers to anything outside itself.
func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	lower := strings.ToLower(page)
	for _, bad := range []string{"src=\"http", "href=\"http", "src='http", "href='http", "@import", "url(http", "<link rel=\"stylesheet\"", "<script src"} {
		if strings.Contains(lower, bad) {
			t.Errorf("page refers to an external resource: contains %q", bad)
		}
	}
	if n := strings.Count(lower, "<script"); n != 2 {
		t.Errorf("page has %d <script elements, want 2 (data and code)", n)
	}
}

func TestWriteHTMLSections(t *testing.T) {
	r := readInput(t, filepath.Join("testdata", "small.input.json"))
	var b bytes.Buffer
	if err := WriteHTML(&b, r, goldenOpts); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`id="warnings"`, `id="graph"`, `<svg`, `class="node"`, `class="edge hot"`,
		`id="t-edges"`, `id="t-ops"`, `id="t-roots"`, `id="t-paths"`, `id="t-traces"`, `id="t-errors"`,
		`id="t-skew"`, `id="t-services"`, `id="t-k8s-api"`, `id="t-k8s-etcd"`, `id="t-k8s-cri"`, `id="t-k8s-pods"`,
		`id="t-base-edges"`, `id="t-base-ops"`, `id="t-base-paths"`,
		`id="trace-1"`, `id="trace-2"`, `class="row cp"`, `data-sort="num"`,
		`generated 2026-11-20 12:00:00 UTC`, `v0.0.0-test`,
		`kubelet → containerd`, `apiserver → etcd`,
		`<span class="pill err">capped</span>`, `sent nothing`,
		`1 more spans not drawn`, // spans_omitted of the second trace
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The slowest path's exemplar links to its waterfall.
	if !strings.Contains(page, `<a href="#trace-1" title="b72fa9f4ff75d0888e0336a5a497149f">`) {
		t.Error("exemplar does not link to the waterfall")
	}
}

func TestWriteHTMLCaps(t *testing.T) {
	r := readInput(t, filepath.Join("testdata", "small.input.json"))
	// Keep one waterfall of three spans: the critical path of the first
	// trace is seven spans long, so the cap keeps its first three, root first.
	var b bytes.Buffer
	if err := WriteHTML(&b, r, HTMLOptions{MaxWaterfalls: 1, MaxWaterfallSpans: 3, MaxTableRows: 2}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if strings.Contains(page, `id="trace-2"`) {
		t.Error("second waterfall drawn despite MaxWaterfalls: 1")
	}
	if got := strings.Count(page, `role="treeitem"`); got != 3 {
		t.Errorf("waterfall rows = %d, want 3", got)
	}
	if !strings.Contains(page, "5 more spans not drawn") {
		t.Error("missing note about the spans left out")
	}
	if !strings.Contains(page, "4 more operations in report.json") {
		t.Error("missing note about the operations left out")
	}
	if !strings.Contains(page, "<title>trace-capture report</title>") {
		t.Error("default title not used")
	}
	if strings.Contains(page, "generated ") {
		t.Error("zero GeneratedAt should hide the generation time")
	}
	// The second slow trace is still listed, without a link.
	if !strings.Contains(page, `<span title="a671eed47d9157b3ac52169d63785b7e">a671eed47d91…</span>`) {
		t.Error("slow trace without a waterfall is not listed")
	}
}

func TestWriteEmptyResult(t *testing.T) {
	r := &analyze.Result{SchemaVersion: analyze.SchemaVersion}
	var b bytes.Buffer
	if err := WriteHTML(&b, r, HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"No spans in this capture", "No services.", "No cross-component calls", "No traces."} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("empty page lacks %q", want)
		}
	}
	b.Reset()
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "{\n  \"schema_version\": 1,") {
		t.Errorf("JSON starts %.40q", b.String())
	}
}

func TestNilResult(t *testing.T) {
	if err := WriteJSON(&bytes.Buffer{}, nil); err == nil {
		t.Error("WriteJSON(nil) returned no error")
	}
	if err := WriteHTML(&bytes.Buffer{}, nil, HTMLOptions{}); err == nil {
		t.Error("WriteHTML(nil) returned no error")
	}
}

var errDiskFull = errors.New("disk full")

// limitWriter accepts n bytes, then fails every write and counts the
// writes attempted after the first failure.
type limitWriter struct {
	n         int
	failed    bool
	afterFail int
	written   int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.failed {
		w.afterFail++
		return 0, errDiskFull
	}
	if len(p) <= w.n {
		w.n -= len(p)
		w.written += len(p)
		return len(p), nil
	}
	k := w.n
	w.n = 0
	w.written += k
	w.failed = true
	return k, errDiskFull
}

func TestWriteErrors(t *testing.T) {
	r := readInput(t, filepath.Join("testdata", "small.input.json"))
	var full bytes.Buffer
	if err := WriteHTML(&full, r, goldenOpts); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 100, 64 << 10, full.Len() - 1} {
		w := &limitWriter{n: n}
		err := WriteHTML(w, r, goldenOpts)
		if !errors.Is(err, errDiskFull) {
			t.Errorf("WriteHTML after %d bytes: err = %v, want %v", n, err, errDiskFull)
		}
		if w.afterFail != 0 {
			t.Errorf("WriteHTML after %d bytes: %d writes after the failure", n, w.afterFail)
		}
		if w.written > n {
			t.Errorf("wrote %d bytes, limit %d", w.written, n)
		}
	}
	for _, n := range []int{0, 10} {
		w := &limitWriter{n: n}
		if err := WriteJSON(w, r); !errors.Is(err, errDiskFull) {
			t.Errorf("WriteJSON after %d bytes: err = %v, want %v", n, err, errDiskFull)
		}
	}
	// A writer with room for everything succeeds.
	w := &limitWriter{n: full.Len()}
	if err := WriteHTML(w, r, goldenOpts); err != nil {
		t.Errorf("WriteHTML with exactly enough room: %v", err)
	}
}

func BenchmarkWriteHTML(b *testing.B) {
	r := readInput(b, filepath.Join("testdata", "real-kubelet-baseline.input.json"))
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := WriteHTML(&buf, r, goldenOpts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "bytes/page")
}
