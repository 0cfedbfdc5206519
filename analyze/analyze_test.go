package analyze

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

const (
	kInternal = ptrace.SpanKindInternal
	kServer   = ptrace.SpanKindServer
	kClient   = ptrace.SpanKindClient
)

func findEdge(t *testing.T, r *Result, client, server string) Edge {
	t.Helper()
	for _, e := range r.Edges {
		if e.ClientService == client && e.ServerService == server {
			return e
		}
	}
	t.Fatalf("no edge %s -> %s in %+v", client, server, r.Edges)
	return Edge{}
}

func findWarning(r *Result, code string) (Warning, bool) {
	for _, w := range r.Warnings {
		if w.Code == code {
			return w, true
		}
	}
	return Warning{}, false
}

func wantPct(t *testing.T, what string, got, want Percentiles) {
	t.Helper()
	if math.Abs(got.P50-want.P50) > 1e-9 || math.Abs(got.P90-want.P90) > 1e-9 ||
		math.Abs(got.P99-want.P99) > 1e-9 || math.Abs(got.Max-want.Max) > 1e-9 {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

func spanByName(t *testing.T, tr Trace, name string) TraceSpan {
	t.Helper()
	for _, s := range tr.Spans {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no span %q in trace %s", name, tr.TraceID)
	return TraceSpan{}
}

// TestRealCaptureApiserverEtcd checks the figures the independent
// reference (../shared/bench/analyze-peer/reference_analysis.py, DuckDB and
// the naive Go peer agree on them) gives for the real capture.
func TestRealCaptureApiserverEtcd(t *testing.T) {
	r := runRecords(t, Options{}, loadJSONLines(t, "../testdata/apiserver-etcd.otlp.jsonl.gz"))
	s := r.Summary
	if s.Spans != 10949 || s.Traces != 1415 || s.Services != 2 || s.Records != 62 || s.BadRecords != 0 || s.DuplicateSpans != 0 {
		t.Errorf("summary = %+v", s)
	}
	// README "Findings": 72 spans whose parent is not in the capture
	// (62 etcd watches + 10 client-continued requests), 49 error spans, 10
	// spans with links.
	if s.OrphanSpans != 72 || s.ErrorSpans != 49 || s.LinkedSpans != 10 {
		t.Errorf("orphans/errors/linked = %d/%d/%d, want 72/49/10", s.OrphanSpans, s.ErrorSpans, s.LinkedSpans)
	}
	want := map[string]int64{"apiserver": 9553, "etcd": 1396}
	for _, sv := range r.Services {
		if sv.Spans != want[sv.Name] {
			t.Errorf("service %s: %d spans, want %d", sv.Name, sv.Spans, want[sv.Name])
		}
	}
	if len(r.Edges) != 1 {
		t.Fatalf("edges = %+v", r.Edges)
	}
	e := findEdge(t, r, "apiserver", "etcd")
	if e.Calls != 1334 {
		t.Errorf("calls = %d, want 1334", e.Calls)
	}
	wantPct(t, "client_ms", e.ClientMs, Percentiles{P50: 2.717233, P90: 10.267193, P99: 60.157358, Max: 245.678079})
	wantPct(t, "server_ms", e.ServerMs, Percentiles{P50: 1.309904, P90: 4.638397, P99: 45.519195, Max: 242.09831})
	// The edge's rows add up to the edge.
	var calls int64
	for _, o := range e.Operations {
		calls += o.Calls
	}
	if calls != e.Calls {
		t.Errorf("operation rows sum to %d calls, want %d", calls, e.Calls)
	}
	// Loopback client calls of the apiserver to itself are not an edge.
	if len(r.Loopback) != 1 || r.Loopback[0].ClientService != "apiserver" || r.Loopback[0].Calls == 0 {
		t.Errorf("loopback = %+v", r.Loopback)
	}
	// Watches are long-lived, never the slowest requests: the slowest trace
	// is the 1.25 s DELETE-collection of 40 big ConfigMaps (211 spans) or
	// the 2.3 s loopback /openapi/v3 fetch, not a 138 s watch.
	if len(r.SlowTraces) == 0 {
		t.Fatal("no slow traces")
	}
	for _, tr := range r.SlowTraces {
		if tr.DurationMs > 10_000 {
			t.Errorf("slow trace %s (%s) lasts %.0f ms: a long-lived watch ranked as slow", tr.TraceID, tr.RootOperation, tr.DurationMs)
		}
	}
	if s.LongLivedTraces < 62 || len(r.LongLived) == 0 || r.LongLived[0].Reason != "watch" {
		t.Errorf("long-lived traces = %d, list %+v", s.LongLivedTraces, r.LongLived)
	}
	var del *Trace
	for i := range r.SlowTraces {
		if r.SlowTraces[i].SpanCount == 211 {
			del = &r.SlowTraces[i]
		}
	}
	if del == nil {
		t.Fatal("the 211-span DELETE-collection trace is not among the slow traces")
	}
	if del.RootOperation != "authentication" || del.DurationMs < 1250 || del.DurationMs > 1251 {
		t.Errorf("DELETE-collection trace = %s %.3f ms", del.RootOperation, del.DurationMs)
	}
	// Example trace A of the README: the slow PATCH whose time is in etcd.
	var patch *Trace
	for i := range r.SlowTraces {
		if r.SlowTraces[i].TraceID == "a671eed47d9157b3ac52169d63785b7e" {
			patch = &r.SlowTraces[i]
		}
	}
	if patch == nil {
		t.Fatal("slow PATCH a671eed4... is not among the slow traces")
	}
	if patch.Bottleneck != "etcd: etcdserverpb.KV/Txn" || patch.SpanCount != 11 {
		t.Errorf("PATCH bottleneck = %q, spans %d", patch.Bottleneck, patch.SpanCount)
	}
	txn := spanByName(t, *patch, "etcdserverpb.KV/Txn")
	if txn.Kind != "CLIENT" || !txn.Critical || txn.Attributes["rpc.method"] != "etcdserverpb.KV/Txn" {
		t.Errorf("PATCH client Txn span = %+v", txn)
	}
	var cp float64
	for _, sp := range patch.Spans {
		cp += sp.CriticalMs
	}
	if math.Abs(cp-patch.DurationMs) > 1e-6 {
		t.Errorf("critical path sums to %.6f ms, want the root's %.6f", cp, patch.DurationMs)
	}
	// Kubernetes groupings from the attributes the components emit.
	k := r.Kubernetes
	if !slices.ContainsFunc(k.APIServer, func(g APIRequestGroup) bool {
		return g.Verb == "PATCH" && g.Resource == "configmaps" && g.Count > 100 && g.EtcdCalls > 0
	}) {
		t.Errorf("no PATCH configmaps group in %+v", k.APIServer)
	}
	if !slices.ContainsFunc(k.APIServer, func(g APIRequestGroup) bool { return g.Verb == "WATCH" && g.LongLived == g.Count }) {
		t.Errorf("WATCH requests are not all long-lived: %+v", k.APIServer)
	}
	if !slices.ContainsFunc(k.Etcd, func(g EtcdGroup) bool {
		return g.Method == "KV/Txn" && g.KeyPrefix == "/configmaps" && g.ServerCalls == g.ClientCalls && g.Calls > 300
	}) {
		t.Errorf("no KV/Txn /configmaps etcd group in %+v", k.Etcd)
	}
	if !slices.ContainsFunc(k.Etcd, func(g EtcdGroup) bool { return g.KeyPrefix == "/apiregistration.k8s.io/apiservices" }) {
		t.Errorf("group resources keep group/resource as key prefix: %+v", k.Etcd)
	}
	if w, ok := findWarning(r, WarnLoneAuthentication); !ok || w.Count != 154 {
		t.Errorf("lone authentication warning = %+v", w)
	}
	if _, ok := findWarning(r, WarnBrokenPropagation); ok {
		t.Errorf("every apiserver etcd call has its etcd span, yet: %+v", r.Warnings)
	}
	if w, ok := findWarning(r, WarnUntrustedLinks); !ok || w.Count != 10 {
		t.Errorf("untrusted client warning = %+v", w)
	}
	if len(r.ClockSkew) != 2 || r.ClockSkew[1].Pairs != 1334 || r.ClockSkew[1].AppliedMs != 0 {
		t.Errorf("clock skew = %+v", r.ClockSkew)
	}
}

// TestRealCaptureKubelet checks the 4-service capture against the
// reference figures.
func TestRealCaptureKubelet(t *testing.T) {
	r := runRecords(t, Options{}, loadJSONLines(t, "../testdata/kubelet-containerd-apiserver-etcd.otlp.jsonl.gz"))
	if r.Summary.Spans != 9516 || r.Summary.Traces != 3755 || r.Summary.Services != 4 {
		t.Errorf("summary = %+v", r.Summary)
	}
	want := map[string]int64{"apiserver": 3123, "etcd": 630, "containerd": 2895, "kubelet": 2868}
	for _, sv := range r.Services {
		if sv.Spans != want[sv.Name] {
			t.Errorf("service %s: %d spans, want %d", sv.Name, sv.Spans, want[sv.Name])
		}
	}
	for _, c := range []struct {
		client, server string
		calls          int64
		cms, sms       Percentiles
	}{
		{"apiserver", "etcd", 568, Percentiles{2.464594, 23.165707, 80.185214, 123.077767}, Percentiles{0.451967, 6.591512, 77.661468, 121.993942}},
		{"kubelet", "apiserver", 62, Percentiles{8.817094, 19.413061, 58.891297, 58.891297}, Percentiles{5.974471, 16.98731, 53.762079, 53.762079}},
		{"kubelet", "containerd", 2795, Percentiles{1.065772, 2.994851, 10.519342, 912.313314}, Percentiles{0.254433, 0.72198, 2.397477, 911.664254}},
	} {
		e := findEdge(t, r, c.client, c.server)
		if e.Calls != c.calls {
			t.Errorf("%s->%s calls = %d, want %d", c.client, c.server, e.Calls, c.calls)
		}
		wantPct(t, c.client+"->"+c.server+" client_ms", e.ClientMs, c.cms)
		wantPct(t, c.client+"->"+c.server+" server_ms", e.ServerMs, c.sms)
	}
	k := r.Kubernetes
	var run *CRIGroup
	for i := range k.CRI {
		if k.CRI[i].Method == "RuntimeService/RunPodSandbox" {
			run = &k.CRI[i]
		}
	}
	if run == nil || run.Calls != 4 || run.Errors != 4 || run.Runtime != "containerd" || run.ServerCalls != 4 {
		t.Errorf("RunPodSandbox CRI group = %+v", run)
	}
	if !slices.ContainsFunc(k.Pods, func(p PodGroup) bool { return p.Pod == "traced-pod-1" && p.Errors > 0 && p.CRICalls > 0 }) {
		t.Errorf("pods = %+v", k.Pods)
	}
	if !slices.ContainsFunc(r.Errors, func(g ErrorGroup) bool { return g.Service == "kubelet" && g.Name == "syncPod" }) {
		t.Errorf("errors = %+v", r.Errors)
	}
	// containerd's ttrpc calls to the shim have no server anywhere: not a
	// broken propagation.
	if w, ok := findWarning(r, WarnBrokenPropagation); ok && strings.Contains(w.Message, "containerd.task") {
		t.Errorf("shim calls reported as broken propagation: %+v", w)
	}
}

// TestDeterministic runs the same input twice: identical JSON.
func TestDeterministic(t *testing.T) {
	recs := loadJSONLines(t, "../testdata/kubelet-containerd-apiserver-etcd.otlp.jsonl.gz")
	a, _ := json.Marshal(runRecords(t, Options{Top: 5}, recs))
	b, _ := json.Marshal(runRecords(t, Options{Top: 5}, recs))
	if !bytes.Equal(a, b) {
		t.Fatal("two runs on the same input differ")
	}
}

// TestCriticalPathByHand checks critical path, self time, overflow
// handling and the slow path on a trace computed by hand:
//
//	R [0,100]
//	├─ A [10,40]
//	├─ B [30,80]
//	│   └─ B1 [35,70]
//	└─ C [85,120]  overflows R: truncated to [85,100]
//
// Walk: R→C (C 85..100 = 15), back to R at 85: B ends 80 (R 80..85 = 5),
// B→B1 (B 70..80 = 10), B1 35..70 = 35, back to B at 35 (B 30..35 = 5),
// back to R at 30: A ends 40 > 30, so R 0..30 = 30. R 35, A 0, B 15, B1 35,
// C 15: 100 in all.
func TestCriticalPathByHand(t *testing.T) {
	h := func(id, parent int, name string, s, e float64) fspan {
		return fspan{Svc: "svc", Host: "h", Trace: 1, ID: id, Parent: parent, Name: name, Kind: kInternal, Start: s, End: e}
	}
	r := runRecords(t, Options{}, [][]byte{fixtureRecord(
		h(1, 0, "R", 0, 100), h(2, 1, "A", 10, 40), h(3, 1, "B", 30, 80), h(4, 3, "B1", 35, 70), h(5, 1, "C", 85, 120),
	)})
	if len(r.SlowTraces) != 1 {
		t.Fatalf("slow traces = %+v", r.SlowTraces)
	}
	tr := r.SlowTraces[0]
	if tr.TraceID != tidHex(1) || tr.DurationMs != 100 || tr.Bottleneck != "svc: B1" {
		t.Errorf("trace = %s %v %q", tr.TraceID, tr.DurationMs, tr.Bottleneck)
	}
	wantCP := map[string]float64{"R": 35, "A": 0, "B": 15, "B1": 35, "C": 15}
	wantSelf := map[string]float64{"R": 15, "A": 30, "B": 15, "B1": 35, "C": 35}
	for _, sp := range tr.Spans {
		if math.Abs(sp.CriticalMs-wantCP[sp.Name]) > 1e-9 || sp.Critical != (wantCP[sp.Name] > 0) {
			t.Errorf("%s: critical %.3f (%v), want %.3f", sp.Name, sp.CriticalMs, sp.Critical, wantCP[sp.Name])
		}
		if math.Abs(sp.SelfMs-wantSelf[sp.Name]) > 1e-9 {
			t.Errorf("%s: self %.3f, want %.3f", sp.Name, sp.SelfMs, wantSelf[sp.Name])
		}
	}
	// Depth-first, children by start: R A B B1 C; parents are indices.
	var names []string
	for _, sp := range tr.Spans {
		names = append(names, sp.Name)
	}
	if !slices.Equal(names, []string{"R", "A", "B", "B1", "C"}) || tr.Spans[3].Parent != 2 || tr.Spans[4].Parent != 0 || tr.Spans[3].Depth != 2 {
		t.Errorf("span order %v, parents %+v", names, tr.Spans)
	}
	if len(r.SlowPaths) != 1 || !slices.Equal(r.SlowPaths[0].Path, []string{"svc: R", "svc: B", "svc: B1"}) ||
		r.SlowPaths[0].BottleneckMsTotal != 35 || r.SlowPaths[0].MsTotal != 100 {
		t.Errorf("slow paths = %+v", r.SlowPaths)
	}
	if w, ok := findWarning(r, WarnOverflowingSpans); !ok || w.Count != 1 {
		t.Errorf("overflow warning = %+v", w)
	}
	if len(r.RootOperations) != 1 || r.RootOperations[0].Name != "R" || r.RootOperations[0].CriticalPath[0].MsTotal != 35 {
		t.Errorf("root operations = %+v", r.RootOperations)
	}
	ops := map[string]Operation{}
	for _, o := range r.Operations {
		ops[o.Name] = o
	}
	if ops["B1"].CriticalPathMsTotal != 35 || ops["C"].SelfMsTotal != 35 || ops["R"].MsTotal != 100 {
		t.Errorf("operations = %+v", r.Operations)
	}
}

// edgeFixture makes n api→db client/server pairs, one per trace: client i
// lasts i ms, its server child i/2 ms, starting 0.1 ms later; the db clock
// runs dbSkew ms ahead.
func edgeFixture(n int, dbSkew float64) []byte {
	var spans []fspan
	for i := 1; i <= n; i++ {
		c := float64(i)
		spans = append(spans,
			fspan{Svc: "api", Host: "n1", Trace: i, ID: 2 * i, Name: "call", Kind: kClient, Start: 0, End: c},
			fspan{Svc: "db", Host: "n2", Trace: i, ID: 2*i + 1, Parent: 2 * i, Name: "serve", Kind: kServer,
				Start: 0.1 + dbSkew, End: 0.1 + c/2 + dbSkew})
	}
	return fixtureRecord(spans...)
}

// TestEdgesByHand: 10 pairs, client 1..10 ms, server 0.5..5 ms. Nearest
// rank on 10 values: p50 is the 5th, p90 the 9th, p99 the 10th.
func TestEdgesByHand(t *testing.T) {
	r := runRecords(t, Options{}, [][]byte{edgeFixture(10, 0)})
	e := findEdge(t, r, "api", "db")
	if e.Calls != 10 || e.Errors != 0 || len(e.Operations) != 1 || e.Operations[0].Calls != 10 {
		t.Errorf("edge = %+v", e)
	}
	wantPct(t, "client", e.ClientMs, Percentiles{5, 9, 10, 10})
	wantPct(t, "server", e.ServerMs, Percentiles{2.5, 4.5, 5, 5})
	wantPct(t, "gap", e.GapMs, Percentiles{2.5, 4.5, 5, 5})
	if e.ClientMsTotal != 55 || !slices.Equal(e.ExemplarTraceIDs, []string{tidHex(10), tidHex(9), tidHex(8)}) {
		t.Errorf("total %v, exemplars %v", e.ClientMsTotal, e.ExemplarTraceIDs)
	}
	for _, cs := range r.ClockSkew {
		if cs.AppliedMs != 0 || cs.EstimatedMs != 0 || (cs.Host == "n2" && (cs.Pairs != 10 || cs.Reference != "n1" || cs.Violations != 0)) {
			t.Errorf("clock skew without skew: %+v", cs)
		}
	}
	// The db time is on the critical path: 10 × (i/2) ms in all.
	for _, o := range r.Operations {
		if o.Name == "serve" && math.Abs(o.CriticalPathMsTotal-27.5) > 1e-5 {
			t.Errorf("serve critical path = %v, want 27.5", o.CriticalPathMsTotal)
		}
	}
}

// TestClockSkew: the db host runs 50 ms ahead. Every pair allows offsets
// in [-50.1, (i/2 - 0.1) - 50]; all intervals share [-50.1, -49.6], the
// point nearest zero is -49.6 ms.
func TestClockSkew(t *testing.T) {
	r := runRecords(t, Options{}, [][]byte{edgeFixture(10, 50)})
	var db ClockSkew
	for _, cs := range r.ClockSkew {
		if cs.Host == "n2" {
			db = cs
		}
	}
	if math.Abs(db.EstimatedMs+49.6) > 1e-6 || db.AppliedMs != db.EstimatedMs || db.Capped || db.Pairs != 10 ||
		db.Violations != 10 || db.Reference != "n1" || !slices.Equal(db.Services, []string{"db"}) {
		t.Errorf("db skew = %+v", db)
	}
	if w, ok := findWarning(r, WarnClockSkew); !ok || w.Count != 1 {
		t.Errorf("warnings = %+v", r.Warnings)
	}
	// After the adjustment every server lies inside its client: the edge
	// figures are those without skew, and nothing overflows.
	e := findEdge(t, r, "api", "db")
	wantPct(t, "gap", e.GapMs, Percentiles{2.5, 4.5, 5, 5})
	if _, ok := findWarning(r, WarnOverflowingSpans); ok {
		t.Errorf("spans still overflow after adjustment: %+v", r.Warnings)
	}
	sv := spanByName(t, r.SlowTraces[0], "serve")
	if math.Abs(sv.SkewMs+49.6) > 1e-6 || sv.StartMs < 0 {
		t.Errorf("adjusted server span = %+v", sv)
	}

	// With a 10 ms cap only 10 ms are applied, and it says so.
	r = runRecords(t, Options{SkewCap: 10 * time.Millisecond}, [][]byte{edgeFixture(10, 50)})
	for _, cs := range r.ClockSkew {
		if cs.Host == "n2" && (cs.AppliedMs != -10 || !cs.Capped) {
			t.Errorf("capped skew = %+v", cs)
		}
	}
	if _, ok := findWarning(r, WarnClockSkewCapped); !ok {
		t.Errorf("no capped warning: %+v", r.Warnings)
	}
	// A negative cap estimates without adjusting.
	r = runRecords(t, Options{SkewCap: -1}, [][]byte{edgeFixture(10, 50)})
	for _, cs := range r.ClockSkew {
		if cs.Host == "n2" && (cs.AppliedMs != 0 || math.Abs(cs.EstimatedMs+49.6) > 1e-6) {
			t.Errorf("estimate-only skew = %+v", cs)
		}
	}
}

// TestDataQuality covers orphans, duplicates, conflicting duplicates,
// cycles, error grouping and span links.
func TestDataQuality(t *testing.T) {
	s := func(trace, id, parent int, name string, s, e float64) fspan {
		return fspan{Svc: "svc", Host: "h", Trace: trace, ID: id, Parent: parent, Name: name, Kind: kInternal, Start: s, End: e}
	}
	rec := fixtureRecord(
		s(1, 1, 0, "root", 0, 10),
		s(1, 2, 1, "child", 1, 5),
		s(2, 3, 77, "orphan", 0, 3), // parent 77 is not in the capture
		s(3, 4, 5, "loopA", 0, 2),   // 4 → 5 → 4: a cycle
		s(3, 5, 4, "loopB", 0, 1),
		fspan{Svc: "svc", Host: "h", Trace: 4, ID: 6, Name: "fails", Kind: kServer, Start: 0, End: 1, Err: "boom"},
		fspan{Svc: "svc", Host: "h", Trace: 5, ID: 7, Name: "fails", Kind: kServer, Start: 0, End: 1, Err: "boom"},
		fspan{Svc: "svc", Host: "h", Trace: 6, ID: 8, Name: "fails", Kind: kServer, Start: 0, End: 1, Err: "-",
			Attrs: map[string]any{"http.response.status_code": 500}},
		fspan{Svc: "svc", Host: "h", Trace: 7, ID: 9, Name: "linked", Kind: kServer, Start: 0, End: 1, Links: 1},
	)
	conflict := fixtureRecord(s(1, 2, 1, "child", 1, 6)) // same ids as "child", other end
	r := runRecords(t, Options{}, [][]byte{rec, rec, conflict})
	sm := r.Summary
	if sm.Spans != 9 || sm.Traces != 7 || sm.Records != 3 {
		t.Errorf("summary = %+v", sm)
	}
	// Every span of rec twice (9 duplicates) plus the conflicting copy.
	if sm.DuplicateSpans != 10 || sm.OrphanSpans != 1 || sm.ErrorSpans != 3 || sm.LinkedSpans != 1 {
		t.Errorf("summary = %+v", sm)
	}
	for code, count := range map[string]int64{WarnDuplicateSpans: 10, WarnConflictingSpans: 1, WarnOrphanSpans: 1,
		WarnInvalidSpans: 1, WarnUntrustedLinks: 1} {
		if w, ok := findWarning(r, code); !ok || w.Count != count {
			t.Errorf("warning %s = %+v, want count %d", code, w, count)
		}
	}
	// The last copy is kept: child ends at 6.
	for _, o := range r.Operations {
		if o.Name == "child" && o.Ms.Max != 5 {
			t.Errorf("child = %+v, want the last copy (5 ms)", o)
		}
	}
	if len(r.Errors) != 1 {
		t.Fatalf("errors = %+v", r.Errors)
	}
	g := r.Errors[0]
	if g.Name != "fails" || g.Count != 3 || len(g.Messages) != 2 || g.Messages[0] != (MessageCount{"boom", 2}) ||
		g.Messages[1] != (MessageCount{"http.response.status_code=500", 1}) || len(g.ExemplarTraceIDs) != 3 {
		t.Errorf("error group = %+v", g)
	}
	// Warnings: severity "warning" first, then by code.
	if !slices.IsSortedFunc(r.Warnings, func(a, b Warning) int {
		if a.Severity != b.Severity {
			return strings.Compare(b.Severity, a.Severity)
		}
		return strings.Compare(a.Code, b.Code)
	}) {
		t.Errorf("warnings not sorted: %+v", r.Warnings)
	}
}

// TestKubernetesSemantics: a lone authentication span joined to its
// (watch) request, long-lived watches kept out of the rankings, broken
// propagation to etcd, sources that sent nothing and manifest drops.
func TestKubernetesSemantics(t *testing.T) {
	api := func(trace, id, parent int, name string, kind ptrace.SpanKind, s, e float64, attrs map[string]any) fspan {
		return fspan{Svc: "apiserver", Host: "cp", Trace: trace, ID: id, Parent: parent, Name: name, Kind: kind, Start: s, End: e, Attrs: attrs}
	}
	etcd := func(trace, id, parent int, name string, s, e float64) fspan {
		return fspan{Svc: "etcd", Host: "cp-etcd", Trace: trace, ID: id, Parent: parent, Name: name, Kind: kServer, Start: s, End: e}
	}
	rec := fixtureRecord(
		// Trace 1: a lone authentication span of 1000 ms ...
		api(1, 1, 0, "authentication", kInternal, 0, 1000, nil),
		// ... whose request continued the loopback client's trace 2: a watch.
		api(2, 10, 0, "HTTP GET", kClient, -1, 1001, map[string]any{"url.full": "https://127.0.0.1/api/v1/pods?watch=true"}),
		api(2, 11, 10, "GET /api/v1/pods", kServer, 0.2, 999.9, map[string]any{
			"http.target": "/api/v1/pods?" + strings.Repeat("x=1&", 60) + "watch=true"}), // watch=true beyond the 200-byte cut
		api(2, 12, 11, "authorization", kInternal, 0.3, 999.8, nil),
		api(2, 13, 12, "WatchList", kInternal, 0.4, 999.7, map[string]any{"verb": "WATCH", "resource": "pods"}),
		// Trace 3: a normal GET whose etcd call is seen on both sides.
		api(3, 20, 0, "authentication", kInternal, 0, 10, nil),
		api(3, 21, 20, "GET /api/v1/namespaces/{:namespace}/pods/{:name}", kServer, 0.1, 9.9, nil),
		api(3, 22, 21, "Get", kInternal, 0.2, 9.8, map[string]any{"verb": "GET", "resource": "pods", "subresource": "status"}),
		api(3, 23, 22, "Get etcd3", kInternal, 0.3, 9.7, map[string]any{"key": "/pods/default/p1"}),
		api(3, 24, 23, "etcdserverpb.KV/Range", kClient, 0.4, 9.6, map[string]any{"rpc.method": "etcdserverpb.KV/Range"}),
		etcd(3, 25, 24, "etcdserverpb.KV/Range", 1, 9),
		// Trace 4: an etcd call whose etcd span is missing.
		api(4, 30, 0, "Get etcd3", kInternal, 0, 5, map[string]any{"key": "/pods/default/p2"}),
		api(4, 31, 30, "etcdserverpb.KV/Range", kClient, 1, 4, nil),
		// Trace 5: an etcd watch stream whose client span was never exported.
		etcd(5, 40, 99, "etcdserverpb.Watch/Watch", 0, 150000),
	)
	opts := Options{Sources: []SourceInfo{
		{Name: "kube-apiserver", Services: []string{"apiserver"}, ReceivedSpans: 13},
		{Name: "etcd", Services: []string{"etcd"}, ReceivedSpans: 2, Dropped: map[string]int64{"queue_full": 7}},
		{Name: "crio", ReceivedSpans: 0, Note: "CRI-O tracing needs a restart."},
	}, Dropped: map[string]int64{"unknown_source": 2}}
	r := runRecords(t, opts, [][]byte{rec})

	if len(r.SlowTraces) != 2 {
		t.Fatalf("slow traces = %+v", r.SlowTraces)
	}
	if r.SlowTraces[0].TraceID != tidHex(3) || r.SlowTraces[1].TraceID != tidHex(4) {
		t.Errorf("slow traces %s, %s: want the GET (3) then the broken call (4)", r.SlowTraces[0].TraceID, r.SlowTraces[1].TraceID)
	}
	if r.Summary.LongLivedTraces != 2 || len(r.LongLived) != 2 {
		t.Fatalf("long-lived = %d %+v", r.Summary.LongLivedTraces, r.LongLived)
	}
	if ll := r.LongLived[0]; ll.TraceID != tidHex(5) || ll.Reason != "watch" || ll.Detail != "etcd: etcdserverpb.Watch/Watch" {
		t.Errorf("long-lived[0] = %+v", ll)
	}
	if ll := r.LongLived[1]; ll.TraceID != tidHex(2) || ll.Reason != "watch" || !strings.HasPrefix(ll.Detail, "https://127.0.0.1/api/v1/pods?watch=true") {
		t.Errorf("long-lived[1] = %+v", ll)
	}
	if w, ok := findWarning(r, WarnLoneAuthentication); !ok || w.Count != 1 || !strings.Contains(w.Message, "1 of them were matched") {
		t.Errorf("lone authentication = %+v", w)
	}
	for _, o := range r.Operations {
		if o.Name == "authentication" && (o.Count != 2 || o.LongLived != 1 || o.Ms.Max != 10) {
			t.Errorf("authentication operation = %+v: the joined watch's authentication must be long-lived", o)
		}
		if o.Name == "authorization" && o.LongLived != 1 {
			t.Errorf("authorization under a watch = %+v", o)
		}
	}
	if w, ok := findWarning(r, WarnBrokenPropagation); !ok || w.Count != 1 || !strings.Contains(w.Message, "apiserver: etcdserverpb.KV/Range (1)") {
		t.Errorf("broken propagation = %+v", w)
	}
	k := r.Kubernetes
	if len(k.APIServer) != 2 {
		t.Fatalf("apiserver groups = %+v", k.APIServer)
	}
	get := k.APIServer[0]
	if get.Verb != "GET" || get.Resource != "pods/status" || get.Count != 1 || get.EtcdCalls != 1 ||
		math.Abs(get.Ms.P50-9.8) > 1e-9 || math.Abs(get.EtcdMsTotal-9.2) > 1e-9 {
		t.Errorf("GET group = %+v (latency is the SERVER span's 9.8 ms)", get)
	}
	if w := k.APIServer[1]; w.Verb != "WATCH" || w.LongLived != 1 || w.Ms != (Percentiles{}) {
		t.Errorf("WATCH group = %+v", w)
	}
	var rng, watch *EtcdGroup
	for i := range k.Etcd {
		switch k.Etcd[i].Method {
		case "KV/Range":
			rng = &k.Etcd[i]
		case "Watch/Watch":
			watch = &k.Etcd[i]
		}
	}
	if rng == nil || rng.KeyPrefix != "/pods" || rng.Calls != 2 || rng.ClientCalls != 2 || rng.ServerCalls != 1 ||
		math.Abs(rng.ServerMs.Max-8) > 1e-9 {
		t.Errorf("KV/Range group = %+v", rng)
	}
	if watch == nil || watch.Calls != 1 || watch.LongLived != 1 || watch.ServerCalls != 1 || watch.ClientCalls != 0 {
		t.Errorf("Watch group = %+v", watch)
	}
	// Sources: crio sent nothing; etcd dropped 7; 2 more dropped unattributed.
	if len(r.Sources) != 3 || r.Sources[0].Name != "crio" || !r.Sources[0].SentNothing || r.Sources[1].AnalyzedSpans != 2 ||
		r.Sources[1].Dropped["queue_full"] != 7 || r.Sources[2].AnalyzedSpans != 12 {
		t.Errorf("sources = %+v", r.Sources)
	}
	if w, ok := findWarning(r, WarnSourceSilent); !ok || !strings.Contains(w.Message, "crio") || !strings.Contains(w.Message, "restart") {
		t.Errorf("silent source = %+v", w)
	}
	var dropped int64
	for _, w := range r.Warnings {
		if w.Code == WarnDroppedSpans {
			dropped += w.Count
		}
	}
	if dropped != 9 {
		t.Errorf("dropped warnings count %d spans, want 9: %+v", dropped, r.Warnings)
	}
}

// TestBaseline compares two captures whose db got slower.
func TestBaseline(t *testing.T) {
	base := runRecords(t, Options{BaselineLabel: "x"}, [][]byte{edgeFixture(10, 0)})
	var spans []fspan
	for i := 1; i <= 10; i++ {
		c := float64(2 * i)
		spans = append(spans,
			fspan{Svc: "api", Host: "n1", Trace: i, ID: 2 * i, Name: "call", Kind: kClient, Start: 0, End: c},
			fspan{Svc: "db", Host: "n2", Trace: i, ID: 2*i + 1, Parent: 2 * i, Name: "serve", Kind: kServer, Start: 0.1, End: 0.1 + c/2})
	}
	spans = append(spans, fspan{Svc: "api", Host: "n1", Trace: 50, ID: 100, Name: "new", Kind: kServer, Start: 0, End: 1})
	r := runRecords(t, Options{Baseline: base, BaselineLabel: "before.tgz"}, [][]byte{fixtureRecord(spans...)})
	d := r.Baseline
	if d == nil || d.Label != "before.tgz" || d.Spans != 20 || d.Traces != 10 {
		t.Fatalf("baseline = %+v", d)
	}
	if len(d.Edges) != 1 {
		t.Fatalf("edge changes = %+v", d.Edges)
	}
	e := d.Edges[0]
	if e.Client.Status != "both" || e.Client.DeltaP50Ms != 5 || e.Client.DeltaP99Ms != 10 || e.Client.RatioP50 != 2 ||
		e.Server.DeltaP50Ms != 2.5 || e.Client.BaseCount != 10 || e.Client.Count != 10 {
		t.Errorf("edge change = %+v", e)
	}
	statuses := map[string]string{}
	for _, o := range d.Operations {
		statuses[o.Name] = o.Status
	}
	if statuses["new"] != "new" || statuses["serve"] != "both" {
		t.Errorf("operation changes = %+v", d.Operations)
	}
	if d.Operations[len(d.Operations)-1].Name != "new" {
		t.Errorf("rows only in one capture sort last: %+v", d.Operations)
	}
	if len(d.Paths) == 0 || d.Paths[0].Status != "both" || d.Paths[0].DeltaP50Ms <= 0 {
		t.Errorf("path changes = %+v", d.Paths)
	}
}

// TestBadInput: garbage and truncated records become warnings; a source
// that fails before any record is an error; one that fails later is a
// warning; a cancelled context is an error.
func TestBadInput(t *testing.T) {
	good := edgeFixture(3, 0)
	r := runRecords(t, Options{}, [][]byte{good, []byte("not protobuf \xff\xff\xff"), good[:len(good)/2], {}})
	if r.Summary.Records != 4 || r.Summary.BadRecords != 2 {
		t.Errorf("summary = %+v", r.Summary)
	}
	if w, ok := findWarning(r, WarnBadRecords); !ok || w.Count != 2 {
		t.Errorf("bad records warning = %+v", w)
	}
	if r.Summary.Spans < 6 {
		t.Errorf("spans of the good record lost: %+v", r.Summary)
	}

	boom := errors.New("archive cut short")
	_, err := Run(context.Background(), Options{}, func(yield func([]byte) error) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("source failing at once: err = %v", err)
	}
	r, err = Run(context.Background(), Options{}, func(yield func([]byte) error) error {
		if err := yield(good); err != nil {
			return err
		}
		return boom
	})
	if err != nil {
		t.Fatal(err)
	}
	if w, ok := findWarning(r, WarnInputError); !ok || !strings.Contains(w.Message, "archive cut short") {
		t.Errorf("input error warning = %+v", r.Warnings)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, Options{}, sliceSource([][]byte{good})); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
	if _, err := Run(context.Background(), Options{}, nil); err == nil {
		t.Error("nil source: no error")
	}

	// Nothing at all.
	r = runRecords(t, Options{}, nil)
	if _, ok := findWarning(r, WarnNoSpans); !ok || r.Summary.Spans != 0 || r.Summary.Window.Start != "" {
		t.Errorf("empty input = %+v", r)
	}
	if b, err := json.Marshal(r); err != nil || bytes.Contains(b, []byte("null")) {
		t.Errorf("empty result JSON has null lists (%v): %s", err, b)
	}
}

func TestProgressAndLogger(t *testing.T) {
	var calls []int64
	r := runRecords(t, Options{Progress: func(n int64) { calls = append(calls, n) }}, [][]byte{edgeFixture(5, 0)})
	if len(calls) == 0 || calls[len(calls)-1] != r.Summary.Spans {
		t.Errorf("progress calls = %v, want the final count %d last", calls, r.Summary.Spans)
	}
}

// TestClockSkewChain: hosts a → b → c, b 20 ms ahead of a and c 20 ms
// ahead of b. Each pair allows [-21, -19] relative to its client: b gets
// -19 ms relative to a (the reference: most spans) and c -19 - 19 = -38.
func TestClockSkewChain(t *testing.T) {
	var spans []fspan
	for i := 1; i <= 5; i++ {
		id := 10 * i
		spans = append(spans,
			fspan{Svc: "a", Host: "a", Trace: i, ID: id, Name: "root", Kind: kServer, Start: -1, End: 11},
			fspan{Svc: "a", Host: "a", Trace: i, ID: id + 1, Parent: id, Name: "call", Kind: kClient, Start: 0, End: 10},
			fspan{Svc: "b", Host: "b", Trace: i, ID: id + 2, Parent: id + 1, Name: "serve", Kind: kServer, Start: 21, End: 29},
			fspan{Svc: "b", Host: "b", Trace: i, ID: id + 3, Parent: id + 2, Name: "call", Kind: kClient, Start: 22, End: 28},
			fspan{Svc: "c", Host: "c", Trace: i, ID: id + 4, Parent: id + 3, Name: "serve", Kind: kServer, Start: 43, End: 47},
		)
	}
	r := runRecords(t, Options{}, [][]byte{fixtureRecord(spans...)})
	want := map[string][2]any{"a": {0.0, ""}, "b": {-19.0, "a"}, "c": {-38.0, "b"}}
	for _, cs := range r.ClockSkew {
		w := want[cs.Host]
		if math.Abs(cs.AppliedMs-w[0].(float64)) > 1e-6 || cs.Reference != w[1].(string) {
			t.Errorf("host %s: applied %.3f ms relative to %q, want %.0f relative to %q", cs.Host, cs.AppliedMs, cs.Reference, w[0], w[1])
		}
	}
	if _, ok := findWarning(r, WarnOverflowingSpans); ok {
		t.Errorf("spans overflow after adjustment: %+v", r.Warnings)
	}
}
