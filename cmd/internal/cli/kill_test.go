package cli

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/trace-capture/trace-capture/receiver/archive"
	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
)

// TestRecordSurvivesSIGKILL kills a recording process mid-stream and
// recovers every span it acknowledged more than a flush interval before,
// first from the orphaned span archive, then through `import`.
func TestRecordSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	cmd := exec.Command(os.Args[0], "record", "--duration", "0", "--otlp-grpc", addr, "--otlp-http=", "-o", filepath.Join(dir, "b.tgz"))
	cmd.Env = append(os.Environ(), "TRACE_CAPTURE_TEST_MAIN=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorder not listening on %s: %s", addr, stderr.String())
		}
	}
	// Exports that fail once the recorder is dead are expected.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))

	exp, err := otlptracegrpc.New(t.Context(), otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	res, _ := resource.New(t.Context(), resource.WithAttributes(attribute.String("service.name", "victim")))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(50)))
	tr := tp.Tracer("kill-test")
	const acked = 1000
	for i := 0; i < acked; i++ {
		_, s := tr.Start(context.Background(), "op")
		s.End()
	}
	if err := tp.ForceFlush(t.Context()); err != nil { // waits for the receiver's acknowledgements
		t.Fatalf("export before the kill: %v\n%s", err, stderr.String())
	}
	time.Sleep(archive.DefaultFlushInterval + 500*time.Millisecond)
	// More spans in flight while the process dies.
	for i := 0; i < 500; i++ {
		_, s := tr.Start(context.Background(), "late")
		s.End()
	}
	go func() { _ = tp.ForceFlush(t.Context()) }()
	time.Sleep(20 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = tp.Shutdown(sctx)

	matches, _ := filepath.Glob(filepath.Join(dir, ".trace-capture-record-*", "local"+archive.FileExtension))
	if len(matches) != 1 {
		t.Fatalf("orphaned archive not found: %v", matches)
	}
	var spans int
	err = archive.ForEachFile(matches[0], archive.ReaderOptions{}, func(rec []byte) error {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec)
		spans += td.SpanCount()
		return err
	})
	if !errors.Is(err, archive.ErrTruncated) {
		t.Fatalf("reading the killed archive: %v, want ErrTruncated", err)
	}
	if spans < acked {
		t.Fatalf("recovered %d spans, want at least the %d acknowledged before the kill", spans, acked)
	}

	// `import` turns the orphan into a bundle, saying it was cut short.
	s, _, out, errOut := TestStreams()
	root := NewCmdRoot(NewFactory(s, "test", nil))
	bundlePath := filepath.Join(dir, "recovered.tgz")
	root.SetArgs([]string{"import", matches[0], "-o", bundlePath})
	if err := root.Execute(); err != nil {
		t.Fatalf("import: %v\n%s", err, errOut)
	}
	m, err := bundle.WalkFile(bundlePath, bundle.Limits{}, bundle.WalkFuncs{})
	if err != nil {
		t.Fatal(err)
	}
	if m.TotalSpans() != int64(spans) || !m.Archives[0].Truncated {
		t.Fatalf("recovered bundle: %d spans (want %d), truncated=%v; %s", m.TotalSpans(), spans, m.Archives[0].Truncated, out)
	}
}
