//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/trace-capture/trace-capture/test/e2e/localcp"
)

// componentBinary returns the path of a real binary: $E2E_ETCD_BINARY or
// $E2E_KUBE_APISERVER_BINARY when set, else what hack/build-component.sh
// prints (a cache hit takes milliseconds, a cold build minutes).
func componentBinary(t testing.TB, component string) string {
	t.Helper()
	env := map[string]string{"etcd": "E2E_ETCD_BINARY", "kube-apiserver": "E2E_KUBE_APISERVER_BINARY"}[component]
	if p := os.Getenv(env); p != "" {
		return p
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "hack", "build-component.sh"))
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), script, component)
	// Progress goes to the test log as it comes (visible with go test -v).
	cmd.Stdout, cmd.Stderr = &stdout, io.MultiWriter(&stderr, testWriter{t})
	// On timeout, SIGTERM lets the script stop its go build and remove its
	// temporary files.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", script, component, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	path := lines[len(lines)-1]
	built := "build time unknown"
	if info, err := os.ReadFile(path + ".info"); err == nil {
		for _, l := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(l, "build_seconds="); ok {
				built = "cold build took " + v + "s"
			}
		}
	}
	t.Logf("%s: %s (%s now; %s)", component, path, time.Since(began).Round(time.Millisecond), built)
	return path
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startControlPlane starts real etcd and kube-apiserver in a test directory
// with the given extra arguments, and stops them when the test ends. On
// failure the end of both logs is printed.
func startControlPlane(t testing.TB, opts localcp.Options) *localcp.ControlPlane {
	t.Helper()
	if opts.EtcdBinary == "" {
		opts.EtcdBinary = componentBinary(t, "etcd")
	}
	if opts.APIServerBinary == "" {
		opts.APIServerBinary = componentBinary(t, "kube-apiserver")
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	cp, err := localcp.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cp.Stop(ctx); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
		if t.Failed() {
			for _, name := range []string{"etcd.log", "kube-apiserver.log"} {
				b, _ := os.ReadFile(filepath.Join(cp.LogDir, name))
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("end of %s:\n%s", name, b)
			}
		}
	})
	return cp
}

// otlpSink is a minimal OTLP/gRPC trace receiver that keeps everything in
// memory. It stands in for the project's receiver in tests that only check
// what the real components send.
type otlpSink struct {
	ptraceotlp.UnimplementedGRPCServer
	addr string

	mu      sync.Mutex
	traces  []ptrace.Traces
	spans   int
	exports int
}

func startOTLPSink(t testing.TB) *otlpSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &otlpSink{addr: ln.Addr().String()}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	ptraceotlp.RegisterGRPCServer(srv, s)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return s
}

func (s *otlpSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	td := ptrace.NewTraces()
	req.Traces().CopyTo(td)
	s.mu.Lock()
	s.traces = append(s.traces, td)
	s.spans += td.SpanCount()
	s.exports++
	s.mu.Unlock()
	return ptraceotlp.NewExportResponse(), nil
}

// writeJSONLines writes every export received as one OTLP/JSON line, the
// Collector file exporter's format.
func (s *otlpSink) writeJSONLines(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf bytes.Buffer
	var m ptrace.JSONMarshaler
	for _, td := range s.traces {
		b, err := m.MarshalTraces(td)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func (s *otlpSink) spanCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spans
}

// waitQuiet waits until no span has arrived for quiet, or until limit.
// Batch span processors export every 5 s by default.
func (s *otlpSink) waitQuiet(quiet, limit time.Duration) {
	end := time.Now().Add(limit)
	last, since := s.spanCount(), time.Now()
	for time.Now().Before(end) && time.Since(since) < quiet {
		time.Sleep(200 * time.Millisecond)
		if n := s.spanCount(); n != last {
			last, since = n, time.Now()
		}
	}
}

// span is a flattened span for assertions.
type span struct {
	Service  string
	TraceID  string
	SpanID   string
	ParentID string
	Name     string
	Kind     ptrace.SpanKind
	Start    time.Time
	End      time.Time
	Attrs    map[string]string
	Links    []string // "traceid/spanid"
	Status   ptrace.StatusCode
}

func (sp span) Duration() time.Duration { return sp.End.Sub(sp.Start) }

// first returns the first of keys that the span has: older kube-apiservers
// (otelhttp before the HTTP semantic conventions v1.26) use the old names.
func (sp span) first(keys ...string) string {
	for _, k := range keys {
		if v, ok := sp.Attrs[k]; ok {
			return v
		}
	}
	return ""
}

// HTTPPath, HTTPMethod and HTTPStatus read an HTTP SERVER span in either
// generation of the semantic conventions.
func (sp span) HTTPPath() string {
	p, _, _ := strings.Cut(sp.first("url.path", "http.target"), "?")
	return p
}
func (sp span) HTTPMethod() string { return sp.first("http.request.method", "http.method") }
func (sp span) HTTPStatus() string {
	return sp.first("http.response.status_code", "http.status_code")
}

func (s *otlpSink) allSpans() []span {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []span
	for _, td := range s.traces {
		for _, rs := range td.ResourceSpans().All() {
			svc := ""
			if v, ok := rs.Resource().Attributes().Get("service.name"); ok {
				svc = v.AsString()
			}
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					x := span{
						Service: svc,
						TraceID: sp.TraceID().String(),
						SpanID:  sp.SpanID().String(),
						Name:    sp.Name(),
						Kind:    sp.Kind(),
						Start:   sp.StartTimestamp().AsTime(),
						End:     sp.EndTimestamp().AsTime(),
						Attrs:   map[string]string{},
						Status:  sp.Status().Code(),
					}
					if p := sp.ParentSpanID(); !p.IsEmpty() {
						x.ParentID = p.String()
					}
					for k, v := range sp.Attributes().All() {
						x.Attrs[k] = v.AsString()
					}
					for _, l := range sp.Links().All() {
						x.Links = append(x.Links, l.TraceID().String()+"/"+l.SpanID().String())
					}
					out = append(out, x)
				}
			}
		}
	}
	return out
}
