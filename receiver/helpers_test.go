package receiver

import (
	"bufio"
	"compress/gzip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// realFiles are the shared captures of real components (OTLP JSON lines, one
// ExportTraceServiceRequest per line).
var realFiles = []string{"apiserver-etcd.otlp.jsonl.gz", "kubelet-containerd-apiserver-etcd.otlp.jsonl.gz"}

var (
	realOnce sync.Once
	realReqs [][]byte
	realErr  error
)

// realRequests returns every request of the real captures as protobuf.
func realRequests(tb testing.TB) [][]byte {
	tb.Helper()
	realOnce.Do(func() {
		for _, name := range realFiles {
			reqs, err := readJSONLines(filepath.Join("..", "testdata", name))
			if err != nil {
				realErr = err
				return
			}
			realReqs = append(realReqs, reqs...)
		}
	})
	if realErr != nil {
		tb.Fatalf("read real captures: %v", realErr)
	}
	return realReqs
}

func readJSONLines(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var out [][]byte
	for sc.Scan() {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(sc.Bytes())
		if err != nil {
			return nil, err
		}
		b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, sc.Err()
}

// seedRequests returns small requests cut from the real captures (the
// first resource with one span per scope, of every fifth request), fit to
// seed fuzzers: the fuzzing engine minimizes large inputs slowly.
func seedRequests(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for i, req := range realRequests(tb) {
		if i%5 != 0 {
			continue
		}
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(req)
		if err != nil {
			tb.Fatalf("decode real request %d: %v", i, err)
		}
		nrs := 0
		td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
			nrs++
			rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
				n := 0
				ss.Spans().RemoveIf(func(ptrace.Span) bool { n++; return n > 1 })
				return false
			})
			return nrs > 1
		})
		b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			tb.Fatalf("encode seed %d: %v", i, err)
		}
		out = append(out, b)
	}
	return out
}

// pdataResources decodes req as the analysis will (ptraceotlp, which
// migrates deprecated fields) and returns what Scan should report.
func pdataResources(req []byte) ([]Resource, error) {
	er := ptraceotlp.NewExportRequest()
	if err := er.UnmarshalProto(req); err != nil {
		return nil, err
	}
	var out []Resource
	rss := er.Traces().ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		r := Resource{Service: strAttr(rs.Resource().Attributes(), "service.name"), Host: strAttr(rs.Resource().Attributes(), "host.name")}
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			r.Spans += rs.ScopeSpans().At(j).Spans().Len()
		}
		out = append(out, r)
	}
	return out, nil
}

func strAttr(m pcommon.Map, key string) string {
	v, ok := m.Get(key)
	if !ok || v.Type() != pcommon.ValueTypeStr {
		return ""
	}
	return v.Str()
}

// sameResources compares Scan's resources with pdata's, ignoring Bytes.
func sameResources(got, want []Resource) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g := got[i]
		g.Bytes = 0
		if g != want[i] {
			return false
		}
	}
	return true
}

func protojsonUnmarshal(b []byte, m proto.Message) error { return protojson.Unmarshal(b, m) }

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func ptraceotlpResponse(t *testing.T, b []byte) ptraceotlp.ExportResponse {
	t.Helper()
	r := ptraceotlp.NewExportResponse()
	if err := r.UnmarshalProto(b); err != nil {
		t.Fatalf("decode ExportTraceServiceResponse %x: %v", b, err)
	}
	return r
}

func ptraceotlpResponseJSON(t *testing.T, b []byte) ptraceotlp.ExportResponse {
	t.Helper()
	r := ptraceotlp.NewExportResponse()
	if err := r.UnmarshalJSON(b); err != nil {
		t.Fatalf("decode JSON ExportTraceServiceResponse %s: %v", b, err)
	}
	return r
}
