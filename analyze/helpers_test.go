package analyze

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// loadJSONLines reads an OTLP JSON lines file (optionally gzipped, one
// ExportTraceServiceRequest per line) and returns protobuf records.
func loadJSONLines(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if filepath.Ext(path) == ".gz" {
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	var um ptrace.JSONUnmarshaler
	var pm ptrace.ProtoMarshaler
	var recs [][]byte
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		td, err := um.UnmarshalTraces(line)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, err := pm.MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, b)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// sliceSource yields the records of recs in order.
func sliceSource(recs [][]byte) RecordSource {
	return func(yield func([]byte) error) error {
		for _, r := range recs {
			if err := yield(r); err != nil {
				return err
			}
		}
		return nil
	}
}

func runRecords(t testing.TB, opts Options, recs [][]byte) *Result {
	t.Helper()
	res, err := Run(context.Background(), opts, sliceSource(recs))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func writeJSON(path string, res *Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
