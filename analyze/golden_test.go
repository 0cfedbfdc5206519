package analyze

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/analyze")

// TestGolden compares the Result of each real capture with its golden JSON
// (../testdata/analyze/*.result.json; regenerate with -update). The golden
// files also serve as sample input for the report package.
func TestGolden(t *testing.T) {
	for _, name := range []string{"apiserver-etcd", "kubelet-containerd-apiserver-etcd"} {
		t.Run(name, func(t *testing.T) {
			r := runRecords(t, Options{}, loadJSONLines(t, filepath.Join("..", "testdata", name+".otlp.jsonl.gz")))
			got, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("..", "testdata", "analyze", name+".result.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Result differs from %s; run go test ./analyze -run TestGolden -update and review the diff", path)
			}
		})
	}
}
