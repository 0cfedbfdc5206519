package analyze

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
)

// FuzzRun feeds arbitrary bytes to Run, as one record and as the same
// record twice: it must never panic, and what it returns must be
// consistent.
func FuzzRun(f *testing.F) {
	f.Add(edgeFixture(3, 0))
	f.Add(edgeFixture(2, 50))
	f.Add(fixtureRecord(
		fspan{Svc: "a", Trace: 1, ID: 1, Parent: 2, Name: "x", Kind: kServer, Start: 0, End: 2, Err: "e"},
		fspan{Svc: "a", Trace: 1, ID: 2, Parent: 1, Name: "y", Kind: kClient, Start: 1, End: 0},
		fspan{Svc: "b", Host: "h", Trace: 1, ID: 3, Parent: 2, Name: "etcdserverpb.Watch/Watch", Kind: kServer, Start: 0, End: 9,
			Attrs: map[string]any{"http.target": "/x?watch=true", "verb": "WATCH", "key": "/a.b/c/d", "k8s.pod.name": "p"}},
		fspan{Svc: "kubelet", Trace: 2, ID: 4, Name: "syncPod", Kind: kInternal, Start: 0, End: 9, Attrs: map[string]any{"k8s.pod.name": "p"}},
		fspan{Svc: "kubelet", Trace: 2, ID: 5, Parent: 4, Name: "runtime.v1.RuntimeService/Version", Kind: kClient, Start: 1, End: 2},
		fspan{Svc: "apiserver", Trace: 3, ID: 6, Name: "authentication", Kind: kInternal, Start: 0, End: 9},
	))
	recs := loadJSONLines(f, "../testdata/kubelet-containerd-apiserver-etcd.otlp.jsonl.gz")
	smallest := recs[0]
	for _, r := range recs {
		if len(r) < len(smallest) {
			smallest = r
		}
	}
	f.Add(smallest)
	f.Add([]byte{0x0a, 0x05, 0x12, 0x03, 0x12, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, rec []byte) {
		for _, in := range [][][]byte{{rec}, {rec, rec}} {
			r, err := Run(context.Background(), Options{Top: 3}, sliceSource(in))
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("marshal: %v", err)
			}
			var spans int64
			for _, s := range r.Services {
				spans += s.Spans
			}
			if spans != r.Summary.Spans {
				t.Fatalf("services hold %d spans, summary %d", spans, r.Summary.Spans)
			}
			check := func(what string, p Percentiles) {
				if !slices.IsSorted([]float64{p.P50, p.P90, p.P99, p.Max}) {
					t.Fatalf("%s percentiles not ordered: %+v", what, p)
				}
			}
			for _, o := range r.Operations {
				check(o.Name, o.Ms)
			}
			for _, e := range r.Edges {
				check("edge client", e.ClientMs)
				check("edge server", e.ServerMs)
			}
			for _, tr := range r.SlowTraces {
				for i, s := range tr.Spans {
					if s.Parent >= i || s.SelfMs < 0 || s.CriticalMs < 0 {
						t.Fatalf("bad span %d in %+v", i, tr)
					}
				}
			}
		}
	})
}
