//go:build e2e

package scenario

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trace-capture/trace-capture/analyze"
	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
)

// binaries come from the environment that `make e2e` sets up.
func binaries(t *testing.T) (tc, etcd, apiserver string) {
	t.Helper()
	tc, etcd, apiserver = os.Getenv("E2E_TRACE_CAPTURE"), os.Getenv("E2E_ETCD"), os.Getenv("E2E_KUBE_APISERVER")
	if tc == "" || etcd == "" || apiserver == "" {
		t.Fatal("E2E_TRACE_CAPTURE, E2E_ETCD and E2E_KUBE_APISERVER must name the binaries: run `make e2e`")
	}
	return tc, etcd, apiserver
}

type span struct {
	service, name string
	kind          ptrace.SpanKind
	traceID       string
	spanID        string
	parentID      string
	start         time.Time
}

func readBundle(t *testing.T, path string) ([]span, *bundle.Manifest) {
	t.Helper()
	var spans []span
	m, err := bundle.WalkFile(path, bundle.Limits{}, bundle.WalkFuncs{Record: func(_ string, rec []byte) error {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec)
		if err != nil {
			return err
		}
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			svc, _ := rs.Resource().Attributes().Get("service.name")
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					s := ss.At(k)
					tid, sid, pid := s.TraceID(), s.SpanID(), s.ParentSpanID()
					p := ""
					if !s.ParentSpanID().IsEmpty() {
						p = hex.EncodeToString(pid[:])
					}
					spans = append(spans, span{svc.AsString(), s.Name(), s.Kind(), hex.EncodeToString(tid[:]), hex.EncodeToString(sid[:]), p, s.StartTimestamp().AsTime()})
				}
			}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return spans, m
}

// TestRealControlPlane is issue 5's end-to-end test: real etcd and
// kube-apiserver, tracing switched on by the project's enable code, load,
// record, restore, analyze, and the report in headless Chromium.
func TestRealControlPlane(t *testing.T) {
	tc, etcd, apiserver := binaries(t)
	dir := t.TempDir()
	if a := os.Getenv("TRACE_CAPTURE_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "e2e")
		_ = os.RemoveAll(dir)
	}
	began := time.Now()
	res, err := Run(t.Context(), Options{TraceCapture: tc, EtcdBinary: etcd, APIServerBinary: apiserver, Dir: dir, LoadDuration: 20 * time.Second,
		Step: func(f string, a ...any) { t.Logf(f, a...) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scenario took %s; phases %v", time.Since(began).Round(time.Second), res.Timings)

	// The restore: byte-identical files and command lines (checked by Run),
	// and the manifests' changes were real.
	if !res.Identical || len(res.ChangedFiles) != 3 || len(res.EtcdFlags) == 0 || !slices.ContainsFunc(res.APIServerFlags, func(f string) bool { return strings.HasPrefix(f, "--tracing-config-file=") }) {
		t.Fatalf("enable/restore: %+v", res)
	}

	spans, m := readBundle(t, res.Bundle)
	perService := map[string]int{}
	byID := map[string]span{}
	for _, s := range spans {
		perService[s.service]++
		byID[s.traceID+s.spanID] = s
	}
	t.Logf("spans per service: %v; load %d requests", perService, res.Load.Requests)
	if perService["apiserver"] == 0 || perService["etcd"] == 0 || m.TotalSpans() != int64(len(spans)) || m.TotalDropped() != 0 {
		t.Fatalf("bundle: %v, manifest %d spans, %d dropped", perService, m.TotalSpans(), m.TotalDropped())
	}

	// Nothing is exported once tracing is switched off again.
	for _, s := range spans {
		if s.start.After(res.RestoredAt) {
			t.Fatalf("%s exported %q at %s, after the restore at %s", s.service, s.name, s.start, res.RestoredAt)
		}
	}

	raw, err := os.ReadFile(filepath.Join(res.ReportDir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r analyze.Result
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}

	// apiserver -> etcd: one call per etcd SERVER span whose parent is in
	// the capture.
	wantCalls := 0
	for _, s := range spans {
		if s.service == "etcd" && s.kind == ptrace.SpanKindServer && s.parentID != "" {
			if p, ok := byID[s.traceID+s.parentID]; ok && p.service == "apiserver" {
				wantCalls++
			}
		}
	}
	var edge *analyze.Edge
	for i := range r.Edges {
		if r.Edges[i].ClientService == "apiserver" && r.Edges[i].ServerService == "etcd" {
			edge = &r.Edges[i]
		}
	}
	if edge == nil || edge.Calls != int64(wantCalls) || wantCalls == 0 {
		t.Fatalf("apiserver → etcd edge %+v, want %d calls", edge, wantCalls)
	}

	// Writes: their critical path runs through etcd's Txn.
	txnOnPath := false
	for _, p := range r.SlowPaths {
		if p.Path[len(p.Path)-1] == "etcd: etcdserverpb.KV/Txn" && slices.ContainsFunc(p.Path, func(s string) bool {
			return strings.Contains(s, "etcdserverpb.KV/Txn") && strings.HasPrefix(s, "apiserver:")
		}) {
			txnOnPath = true
		}
	}
	if !txnOnPath {
		t.Errorf("no slow path of a write ends in etcd's Txn: %v", r.SlowPaths)
	}

	// The big LIST (40 x 300 KB) spends its time serializing, not in etcd.
	bigList := false
	for _, tr := range r.SlowTraces {
		if strings.HasPrefix(tr.EntryOperation, "LIST ") || strings.HasPrefix(tr.EntryOperation, "GET /api/v1/namespaces/{:namespace}/configmaps") && !strings.Contains(tr.EntryOperation, "{:name}") {
			if tr.Bottleneck == "apiserver: SerializeObject" {
				bigList = true
			}
		}
	}
	var listSerialize float64
	for _, op := range r.Operations {
		if op.Service == "apiserver" && op.Name == "SerializeObject" {
			listSerialize = op.CriticalPathMsTotal
		}
	}
	if !bigList && listSerialize == 0 {
		t.Errorf("the big LIST's serialization does not show: slow traces %+v", r.SlowTraces)
	}

	// Watches are long-lived, never among the slowest requests.
	if r.Summary.LongLivedTraces == 0 || len(r.LongLived) == 0 {
		t.Errorf("no long-lived traces reported although the load watched: %+v", r.Summary)
	}
	for _, tr := range r.SlowTraces {
		for _, s := range tr.Spans {
			if strings.Contains(s.Name, "Watch") && s.DurationMs > 1000 {
				t.Errorf("slow trace %s holds the watch span %q (%.0f ms)", tr.TraceID, s.Name, s.DurationMs)
			}
		}
	}

	// The admin's sampled traceparent was continued.
	continued := 0
	for _, tr := range res.Load.Traced {
		if !tr.Admin || !tr.Sampled {
			continue
		}
		for _, s := range spans {
			if s.traceID == tr.TraceID && s.parentID == tr.SpanID && s.kind == ptrace.SpanKindServer {
				continued++
				break
			}
		}
	}
	if continued == 0 {
		t.Errorf("no admin traceparent was continued (%d traced requests)", len(res.Load.Traced))
	}

	// No unexpected warnings.
	expected := map[string]bool{analyze.WarnOrphanSpans: true, analyze.WarnLongLived: true, analyze.WarnUntrustedLinks: true,
		analyze.WarnOverflowingSpans: true, "lone_authentication": true, analyze.WarnTruncatedTables: true}
	for _, w := range r.Warnings {
		if !expected[w.Code] {
			t.Errorf("unexpected warning %s: %s", w.Code, w.Message)
		}
	}

	// The report in real headless Chromium: its self test passes, no
	// console errors, and a screenshot for people.
	checkInChromium(t, filepath.Join(res.ReportDir, "report.html"), dir)
}

func checkInChromium(t *testing.T, page, artifacts string) {
	t.Helper()
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s is needed (apt-get install -y chromium): %v", chromium, err)
	}
	run := func(args ...string) (string, string) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
			"--hide-scrollbars", "--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}
		cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium: %v\n%s", err, errb.String())
		}
		return out.String(), errb.String()
	}
	u := url.URL{Scheme: "file", Path: page, RawQuery: "selftest"}
	dom, stderr := run("--dump-dom", u.String())
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, ":CONSOLE") || strings.Contains(l, "Uncaught") {
			t.Errorf("console: %s", l)
		}
	}
	tag := regexp.MustCompile(`(?s)<html\b[^>]*>`).FindString(dom)
	if !strings.Contains(tag, `data-ready="1"`) || !strings.Contains(tag, `data-selftest="pass"`) {
		t.Fatalf("report self test did not pass in Chromium: %s", tag)
	}
	shot := filepath.Join(artifacts, "e2e-report.png")
	run("--window-size=1400,2000", "--screenshot="+shot, (&url.URL{Scheme: "file", Path: page}).String())
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}
