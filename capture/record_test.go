package capture

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/trace-capture/trace-capture/receiver"
	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
	"github.com/trace-capture/trace-capture/receiver/archive/otlpfile"
)

// spanKey renders everything a span carries that must survive the trip,
// in a canonical form, from the SDK side.
func sdkSpanKey(s sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	sc := s.SpanContext()
	fmt.Fprintf(&b, "%s/%s parent=%s name=%q kind=%d start=%d end=%d status=%d:%q",
		sc.TraceID(), sc.SpanID(), s.Parent().SpanID(), s.Name(), kindToProto(s.SpanKind()),
		s.StartTime().UnixNano(), s.EndTime().UnixNano(), statusToProto(s.Status().Code), s.Status().Description)
	var attrs []string
	for _, kv := range s.Attributes() {
		attrs = append(attrs, fmt.Sprintf("%s=%v", kv.Key, kv.Value.AsInterface()))
	}
	sort.Strings(attrs)
	fmt.Fprintf(&b, " attrs=%v", attrs)
	for _, e := range s.Events() {
		fmt.Fprintf(&b, " event=%q@%d", e.Name, e.Time.UnixNano())
	}
	for _, l := range s.Links() {
		fmt.Fprintf(&b, " link=%s/%s", l.SpanContext.TraceID(), l.SpanContext.SpanID())
	}
	var res []string
	for _, kv := range s.Resource().Attributes() {
		res = append(res, fmt.Sprintf("%s=%v", kv.Key, kv.Value.AsInterface()))
	}
	sort.Strings(res)
	fmt.Fprintf(&b, " resource=%v", res)
	return b.String()
}

func pdataSpanKey(res pcommon.Resource, s ptrace.Span) string {
	var b strings.Builder
	tid, sid, pid := s.TraceID(), s.SpanID(), s.ParentSpanID()
	fmt.Fprintf(&b, "%s/%s parent=%s name=%q kind=%d start=%d end=%d status=%d:%q",
		hex.EncodeToString(tid[:]), hex.EncodeToString(sid[:]), hex.EncodeToString(pid[:]), s.Name(), s.Kind(),
		s.StartTimestamp(), s.EndTimestamp(), s.Status().Code(), s.Status().Message())
	var attrs []string
	s.Attributes().Range(func(k string, v pcommon.Value) bool {
		attrs = append(attrs, fmt.Sprintf("%s=%v", k, v.AsRaw()))
		return true
	})
	sort.Strings(attrs)
	fmt.Fprintf(&b, " attrs=%v", attrs)
	for i := 0; i < s.Events().Len(); i++ {
		e := s.Events().At(i)
		fmt.Fprintf(&b, " event=%q@%d", e.Name(), e.Timestamp())
	}
	for i := 0; i < s.Links().Len(); i++ {
		l := s.Links().At(i)
		ltid, lsid := l.TraceID(), l.SpanID()
		fmt.Fprintf(&b, " link=%s/%s", hex.EncodeToString(ltid[:]), hex.EncodeToString(lsid[:]))
	}
	var r []string
	res.Attributes().Range(func(k string, v pcommon.Value) bool {
		r = append(r, fmt.Sprintf("%s=%v", k, v.AsRaw()))
		return true
	})
	sort.Strings(r)
	fmt.Fprintf(&b, " resource=%v", r)
	return b.String()
}

func kindToProto(k trace.SpanKind) int {
	switch k {
	case trace.SpanKindInternal:
		return 1
	case trace.SpanKindServer:
		return 2
	case trace.SpanKindClient:
		return 3
	case trace.SpanKindProducer:
		return 4
	case trace.SpanKindConsumer:
		return 5
	}
	return 0
}

func statusToProto(c codes.Code) int {
	switch c {
	case codes.Ok:
		return 1
	case codes.Error:
		return 2
	}
	return 0
}

// emit makes n traces of a server span with a client child, an event, an
// error, and a link to the previous trace.
func emit(t *testing.T, tp *sdktrace.TracerProvider, n int) {
	t.Helper()
	tr := tp.Tracer("trace-capture/test")
	var prev trace.SpanContext
	for i := 0; i < n; i++ {
		opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("http.request.method", "GET"), attribute.Int("i", i), attribute.StringSlice("tags", []string{"a", "<b>"}))}
		if prev.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: prev}))
		}
		ctx, root := tr.Start(context.Background(), fmt.Sprintf("GET /api/v1/things/%d", i%3), opts...)
		_, child := tr.Start(ctx, "etcdserverpb.KV/Range", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attribute.Float64("x", 1.5)))
		child.AddEvent("sent", trace.WithAttributes(attribute.Bool("ok", true)))
		if i%5 == 0 {
			child.SetStatus(codes.Error, "boom")
		}
		child.End()
		root.End()
		prev = root.SpanContext()
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestRecordWithRealExporters(t *testing.T) {
	cases := []struct {
		name string
		http bool
		gzip bool
	}{
		{"grpc", false, false},
		{"grpc+gzip", false, true},
		{"http", true, false},
		{"http+gzip", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "bundle.tgz")
			ctx, stop := context.WithCancel(t.Context())
			listening := make(chan receiver.Addrs, 1)
			done := make(chan error, 1)
			var res *RecordResult
			go func() {
				var err error
				res, err = Record(ctx, RecordOptions{
					Receiver:    receiver.Config{GRPCAddr: freeAddr(t), HTTPAddr: freeAddr(t)},
					Output:      out,
					ToolVersion: "test",
					OnListening: func(a receiver.Addrs) { listening <- a },
				})
				done <- err
			}()
			var addrs receiver.Addrs
			select {
			case addrs = <-listening:
			case err := <-done:
				t.Fatalf("record ended before listening: %v", err)
			}

			var exp sdktrace.SpanExporter
			var err error
			if tc.http {
				o := []otlptracehttp.Option{otlptracehttp.WithEndpoint(addrs.HTTP), otlptracehttp.WithInsecure()}
				if tc.gzip {
					o = append(o, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
				}
				exp, err = otlptracehttp.New(t.Context(), o...)
			} else {
				o := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(addrs.GRPC), otlptracegrpc.WithInsecure()}
				if tc.gzip {
					o = append(o, otlptracegrpc.WithCompressor("gzip"))
				}
				exp, err = otlptracegrpc.New(t.Context(), o...)
			}
			if err != nil {
				t.Fatal(err)
			}
			sent := tracetest.NewSpanRecorder()
			res0, _ := resource.New(t.Context(), resource.WithAttributes(
				attribute.String("service.name", "svc-"+tc.name), attribute.String("host.name", "node-1")))
			tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res0), sdktrace.WithSpanProcessor(sent),
				sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(64)))
			emit(t, tp, 300)
			if err := tp.Shutdown(t.Context()); err != nil {
				t.Fatalf("exporter shutdown: %v", err)
			}
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if !res.Interrupted {
				t.Error("an interrupted recording is not marked so")
			}

			want := map[string]bool{}
			for _, s := range sent.Ended() {
				want[sdkSpanKey(s)] = true
			}
			got := map[string]bool{}
			var recs [][]byte
			m, err := bundle.WalkFile(out, bundle.Limits{}, bundle.WalkFuncs{Record: func(_ string, rec []byte) error {
				recs = append(recs, bytes.Clone(rec))
				td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec)
				if err != nil {
					return err
				}
				forEachSpan(td, func(r pcommon.Resource, s ptrace.Span) { got[pdataSpanKey(r, s)] = true })
				return nil
			}})
			if err != nil {
				t.Fatal(err)
			}
			if len(want) != 600 || len(got) != len(want) {
				t.Fatalf("sent %d spans, bundle holds %d", len(want), len(got))
			}
			for k := range want {
				if !got[k] {
					id := strings.Fields(k)[0]
					for g := range got {
						if strings.HasPrefix(g, id) {
							t.Fatalf("span altered in the bundle:\nsent %s\ngot  %s", k, g)
						}
					}
					t.Fatalf("span missing in the bundle:\n%s", k)
				}
			}
			if len(m.Sources) != 1 || m.Sources[0].Service != "svc-"+tc.name || m.Sources[0].Host != "node-1" || m.Sources[0].Spans != 600 {
				t.Fatalf("manifest sources %+v", m.Sources)
			}
			if m.Archives[0].Spans != 600 || m.Mode != bundle.ModeLocal || m.Tool.Version != "test" {
				t.Fatalf("manifest %+v", m)
			}

			// export --format otlp-json round-trips every span.
			var js bytes.Buffer
			er, err := Export(t.Context(), ExportOptions{Input: out, Format: otlpfile.FormatJSON, Out: &js})
			if err != nil || er.Spans != 600 {
				t.Fatalf("export: %v, %+v", err, er)
			}
			again := map[string]bool{}
			if _, err := otlpfile.Read(&js, otlpfile.Options{}, func(rec []byte) error {
				td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec)
				forEachSpan(td, func(r pcommon.Resource, s ptrace.Span) { again[pdataSpanKey(r, s)] = true })
				return err
			}); err != nil {
				t.Fatal(err)
			}
			for k := range want {
				if !again[k] {
					t.Fatalf("span lost or altered by export --format otlp-json:\n%s", k)
				}
			}
			// and the protobuf export is byte-identical.
			var pb bytes.Buffer
			if _, err := Export(t.Context(), ExportOptions{Input: out, Format: otlpfile.FormatProto, Out: &pb}); err != nil {
				t.Fatal(err)
			}
			i := 0
			if _, err := otlpfile.Read(&pb, otlpfile.Options{}, func(rec []byte) error {
				if !bytes.Equal(rec, recs[i]) {
					return fmt.Errorf("record %d changed", i)
				}
				i++
				return nil
			}); err != nil || i != len(recs) {
				t.Fatalf("proto export: %v after %d of %d records", err, i, len(recs))
			}
		})
	}
}

func forEachSpan(td ptrace.Traces, fn func(pcommon.Resource, ptrace.Span)) {
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				fn(rs.Resource(), ss.At(k))
			}
		}
	}
}

// TestRecordDurationAndBudget records for a fixed window into a tiny
// budget: the window ends on its own, the first requests are kept and the
// rest counted as dropped, so kept + dropped = sent.
func TestRecordDurationAndBudget(t *testing.T) {
	out := filepath.Join(t.TempDir(), "b.tgz")
	addr := freeAddr(t)
	listening := make(chan struct{})
	done := make(chan error, 1)
	var res *RecordResult
	go func() {
		var err error
		res, err = Record(t.Context(), RecordOptions{
			Receiver:    receiver.Config{GRPCAddr: addr},
			MaxBytes:    4096,
			Duration:    3 * time.Second,
			Output:      out,
			OnListening: func(receiver.Addrs) { close(listening) },
		})
		done <- err
	}()
	<-listening
	// The SDK reports every refused export through the global handler;
	// they are expected here.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))
	exp, err := otlptracegrpc.New(t.Context(), otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	res0, _ := resource.New(t.Context(), resource.WithAttributes(attribute.String("service.name", "budget")))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res0), sdktrace.WithSyncer(exp))
	emit(t, tp, 100) // 200 spans, one request each
	_ = tp.Shutdown(t.Context())
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if res.Interrupted {
		t.Error("a window that ended on time is marked interrupted")
	}
	m := res.Manifest
	if len(m.Sources) != 1 {
		t.Fatalf("sources %+v", m.Sources)
	}
	s := m.Sources[0]
	var dropped int64
	for _, d := range s.Dropped {
		dropped += d.Spans
	}
	if s.Spans == 0 || dropped == 0 || s.Spans+dropped != 200 {
		t.Fatalf("kept %d + dropped %d spans, want some of each adding up to 200 (%+v)", s.Spans, dropped, s)
	}
	if m.Archives[0].Bytes > 4096 {
		t.Fatalf("archive of %d bytes passed the 4096-byte budget", m.Archives[0].Bytes)
	}
	var n int64
	if _, err := bundle.WalkFile(out, bundle.Limits{}, bundle.WalkFuncs{Record: func(_ string, rec []byte) error {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec)
		n += int64(td.SpanCount())
		return err
	}}); err != nil {
		t.Fatal(err)
	}
	if n != s.Spans {
		t.Fatalf("bundle holds %d spans, manifest says %d", n, s.Spans)
	}
}
