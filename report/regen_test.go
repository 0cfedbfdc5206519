package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/trace-capture/trace-capture/analyze"
	"github.com/trace-capture/trace-capture/receiver/archive/otlpfile"
)

var regen = flag.Bool("regen", false, "regenerate testdata/real-*.input.json by running analyze on the real captures in ../testdata (then run -update)")

// realCases are the golden inputs made by analyze from the real captures of
// the project's top-level testdata. Top and MaxTraceSpans keep them small.
var realCases = []struct {
	name, capture, baseline string
}{
	{"real-apiserver-etcd", "apiserver-etcd.otlp.jsonl.gz", ""},
	{"real-kubelet-baseline", "kubelet-containerd-apiserver-etcd.otlp.jsonl.gz", "apiserver-etcd.otlp.jsonl.gz"},
}

func analyzeCapture(t *testing.T, name string, baseline *analyze.Result, label string) *analyze.Result {
	t.Helper()
	path := filepath.Join("..", "testdata", name)
	src := func(yield func([]byte) error) error {
		_, err := otlpfile.ReadFile(path, otlpfile.Options{}, yield)
		return err
	}
	r, err := analyze.Run(t.Context(), analyze.Options{Top: 5, MaxTraceSpans: 150, MaxOperations: 60, Baseline: baseline, BaselineLabel: label}, src)
	if err != nil {
		t.Fatalf("analyze %s: %v", path, err)
	}
	return r
}

func TestRegenerateRealInputs(t *testing.T) {
	if !*regen {
		t.Skip("run with -regen to rebuild testdata/real-*.input.json from ../testdata")
	}
	for _, c := range realCases {
		var base *analyze.Result
		if c.baseline != "" {
			base = analyzeCapture(t, c.baseline, nil, "")
		}
		r := analyzeCapture(t, c.capture, base, c.baseline)
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", c.name+".input.json"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
