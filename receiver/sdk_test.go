package receiver

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/trace-capture/trace-capture/receiver/archive"
)

// startRecording starts a receiver on loopback ports that records into an
// archive in a temporary directory. stop shuts both down and returns the
// archive's path.
func startRecording(t *testing.T, cfg Config, opts RecorderOptions) (r *Receiver, rec *Recorder, stop func() string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "spans"+archive.FileExtension)
	w, err := archive.Create(path, archive.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec = NewRecorder(w, opts)
	r, err = New(cfg, rec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() string {
		t.Helper()
		if stopped {
			return path
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("close archive: %v", err)
		}
		return path
	}
	t.Cleanup(func() { stop() })
	return r, rec, stop
}

func loopback() Config {
	return Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}
}

// readArchive returns every request of the archive at path, decoded.
func readArchive(t *testing.T, path string) []ptrace.Traces {
	t.Helper()
	var out []ptrace.Traces
	err := archive.ForEachFile(path, archive.ReaderOptions{}, func(rec []byte) error {
		er := ptraceotlp.NewExportRequest()
		if err := er.UnmarshalProto(rec); err != nil {
			return err
		}
		out = append(out, er.Traces())
		return nil
	})
	if err != nil {
		t.Fatalf("read archive: %v", err)
	}
	return out
}

// archivedSpan is a span found in the archive with its resource and scope.
type archivedSpan struct {
	span     ptrace.Span
	resource pcommon.Resource
	scope    pcommon.InstrumentationScope
}

func archivedSpans(t *testing.T, path string) map[string]archivedSpan {
	t.Helper()
	out := make(map[string]archivedSpan)
	for _, td := range readArchive(t, path) {
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			for j := 0; j < rss.At(i).ScopeSpans().Len(); j++ {
				ss := rss.At(i).ScopeSpans().At(j)
				for k := 0; k < ss.Spans().Len(); k++ {
					sp := ss.Spans().At(k)
					key := sp.TraceID().String() + "/" + sp.SpanID().String()
					if _, dup := out[key]; dup {
						t.Errorf("span %s is in the archive twice", key)
					}
					out[key] = archivedSpan{span: sp, resource: rss.At(i).Resource(), scope: ss.Scope()}
				}
			}
		}
	}
	return out
}

func TestSDKExportersRecordEverySpan(t *testing.T) {
	exporters := []struct {
		name string
		new  func(ctx context.Context, a Addrs) (sdktrace.SpanExporter, error)
	}{
		{"grpc", func(ctx context.Context, a Addrs) (sdktrace.SpanExporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(a.GRPC), otlptracegrpc.WithInsecure())
		}},
		{"grpc+gzip", func(ctx context.Context, a Addrs) (sdktrace.SpanExporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(a.GRPC), otlptracegrpc.WithInsecure(), otlptracegrpc.WithCompressor("gzip"))
		}},
		{"http", func(ctx context.Context, a Addrs) (sdktrace.SpanExporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(a.HTTP), otlptracehttp.WithInsecure())
		}},
		{"http+gzip", func(ctx context.Context, a Addrs) (sdktrace.SpanExporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(a.HTTP), otlptracehttp.WithInsecure(), otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		}},
	}
	for _, ex := range exporters {
		t.Run(ex.name, func(t *testing.T) {
			r, rec, stop := startRecording(t, loopback(), RecorderOptions{})
			sent := tracetest.NewSpanRecorder()
			// Two components: two resources, each with its own exporter.
			for _, res := range []*resource.Resource{
				resource.NewSchemaless(attribute.String("service.name", "kube-apiserver"), attribute.String("host.name", "master-0"), attribute.Int("pid", 4242)),
				resource.NewSchemaless(attribute.String("service.name", "etcd"), attribute.String("host.name", "master-1"), attribute.StringSlice("tags", []string{"a", "b"})),
			} {
				exp, err := ex.new(t.Context(), r.Addrs())
				if err != nil {
					t.Fatal(err)
				}
				tp := sdktrace.NewTracerProvider(
					sdktrace.WithResource(res),
					sdktrace.WithSpanProcessor(sent),
					sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(64)),
				)
				emitSpans(t.Context(), tp, 150)
				if err := tp.Shutdown(t.Context()); err != nil {
					t.Fatalf("shut down tracer provider: %v", err)
				}
			}
			path := stop()

			want := sent.Ended()
			if len(want) != 2*150*3 {
				t.Fatalf("the SDK ended %d spans, want %d", len(want), 2*150*3)
			}
			got := archivedSpans(t, path)
			if len(got) != len(want) {
				t.Errorf("the archive holds %d spans, %d were sent", len(got), len(want))
			}
			for _, w := range want {
				key := w.SpanContext().TraceID().String() + "/" + w.SpanContext().SpanID().String()
				g, ok := got[key]
				if !ok {
					t.Errorf("span %s (%s) is not in the archive", key, w.Name())
					continue
				}
				compareSpan(t, w, g)
			}

			st := rec.Stats()
			perService := map[string]int64{}
			for _, s := range st.Sources {
				perService[s.Service+"@"+s.Host] += s.Spans
			}
			if want := map[string]int64{"kube-apiserver@master-0": 450, "etcd@master-1": 450}; !reflect.DeepEqual(perService, want) {
				t.Errorf("spans per source %v, want %v", perService, want)
			}
			if st.Spans != 900 || st.DroppedSpans != 0 || len(st.Refused) != 0 {
				t.Errorf("stats: %d spans, %d dropped, refused %v; want 900, 0, none", st.Spans, st.DroppedSpans, st.Refused)
			}
		})
	}
}

// emitSpans makes n traces of three spans each (a server span with a client
// child and an internal grandchild), with attributes of every type, events,
// links and statuses.
func emitSpans(ctx context.Context, tp trace.TracerProvider, n int) {
	tr := tp.Tracer("k8s.io/apiserver", trace.WithInstrumentationVersion("1.37.2"))
	etcd := tp.Tracer("go.etcd.io/etcd/client/v3", trace.WithInstrumentationVersion("3.6.16"))
	var prev trace.SpanContext
	for i := range n {
		opts := []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", "GET"),
				attribute.Int("http.response.status_code", 200+i%3),
				attribute.Float64("ratio", float64(i)/7),
				attribute.Bool("cached", i%2 == 0),
				attribute.StringSlice("verbs", []string{"get", "list"}),
				attribute.Int64Slice("sizes", []int64{1, int64(i)}),
				attribute.BoolSlice("flags", []bool{true, false}),
				attribute.Float64Slice("weights", []float64{0.5, 1.5}),
			),
		}
		if prev.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: prev, Attributes: []attribute.KeyValue{attribute.String("link.kind", "previous")}}))
		}
		ctx1, root := tr.Start(ctx, fmt.Sprintf("GET /api/v1/namespaces/ns-%d/pods", i%10), opts...)
		ctx2, client := etcd.Start(ctx1, "etcdserverpb.KV/Range", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("rpc.system.name", "grpc"), attribute.Int("server.port", 2379)))
		_, inner := tr.Start(ctx2, "decode", trace.WithAttributes(attribute.Int("bytes", i*100)))
		inner.AddEvent("decoded", trace.WithAttributes(attribute.Int("objects", i)))
		inner.End()
		if i%5 == 0 {
			client.RecordError(fmt.Errorf("etcdserver: request timed out (%d)", i))
			client.SetStatus(otelcodes.Error, "request timed out")
		}
		client.End()
		if i%7 == 0 {
			root.SetStatus(otelcodes.Ok, "")
		}
		root.End()
		prev = root.SpanContext()
	}
}

// compareSpan checks every field of the archived span g against the span w
// the SDK ended.
func compareSpan(t *testing.T, w sdktrace.ReadOnlySpan, g archivedSpan) {
	t.Helper()
	sp := g.span
	name := w.Name()
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("span %q: %s = %v, want %v", name, what, got, want)
		}
	}
	check("trace id", sp.TraceID().String(), w.SpanContext().TraceID().String())
	check("span id", sp.SpanID().String(), w.SpanContext().SpanID().String())
	wantParent := ""
	if w.Parent().IsValid() {
		wantParent = w.Parent().SpanID().String()
	}
	gotParent := ""
	if !sp.ParentSpanID().IsEmpty() {
		gotParent = sp.ParentSpanID().String()
	}
	check("parent span id", gotParent, wantParent)
	check("name", sp.Name(), w.Name())
	check("kind", int(sp.Kind()), int(w.SpanKind()))
	check("start", sp.StartTimestamp().AsTime().UnixNano(), w.StartTime().UnixNano())
	check("end", sp.EndTimestamp().AsTime().UnixNano(), w.EndTime().UnixNano())
	check("trace state", sp.TraceState().AsRaw(), w.SpanContext().TraceState().String())
	check("attributes", sp.Attributes().AsRaw(), attrMap(w.Attributes()))
	check("dropped attributes", int(sp.DroppedAttributesCount()), w.DroppedAttributes())

	wantCode := map[otelcodes.Code]ptrace.StatusCode{otelcodes.Unset: ptrace.StatusCodeUnset, otelcodes.Ok: ptrace.StatusCodeOk, otelcodes.Error: ptrace.StatusCodeError}[w.Status().Code]
	check("status code", sp.Status().Code(), wantCode)
	check("status message", sp.Status().Message(), w.Status().Description)

	check("events", sp.Events().Len(), len(w.Events()))
	for i := 0; i < min(sp.Events().Len(), len(w.Events())); i++ {
		ge, we := sp.Events().At(i), w.Events()[i]
		check("event name", ge.Name(), we.Name)
		check("event time", ge.Timestamp().AsTime().UnixNano(), we.Time.UnixNano())
		check("event attributes", ge.Attributes().AsRaw(), attrMap(we.Attributes))
	}
	check("links", sp.Links().Len(), len(w.Links()))
	for i := 0; i < min(sp.Links().Len(), len(w.Links())); i++ {
		gl, wl := sp.Links().At(i), w.Links()[i]
		check("link trace id", gl.TraceID().String(), wl.SpanContext.TraceID().String())
		check("link span id", gl.SpanID().String(), wl.SpanContext.SpanID().String())
		check("link attributes", gl.Attributes().AsRaw(), attrMap(wl.Attributes))
	}
	check("resource", g.resource.Attributes().AsRaw(), attrMap(w.Resource().Attributes()))
	check("scope name", g.scope.Name(), w.InstrumentationScope().Name)
	check("scope version", g.scope.Version(), w.InstrumentationScope().Version)
}

// attrMap is kvs as pcommon.Map.AsRaw shows them.
func attrMap(kvs []attribute.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		var v any
		switch kv.Value.Type() {
		case attribute.BOOL:
			v = kv.Value.AsBool()
		case attribute.INT64:
			v = kv.Value.AsInt64()
		case attribute.FLOAT64:
			v = kv.Value.AsFloat64()
		case attribute.STRING:
			v = kv.Value.AsString()
		case attribute.BOOLSLICE:
			v = toAny(kv.Value.AsBoolSlice())
		case attribute.INT64SLICE:
			v = toAny(kv.Value.AsInt64Slice())
		case attribute.FLOAT64SLICE:
			v = toAny(kv.Value.AsFloat64Slice())
		case attribute.STRINGSLICE:
			v = toAny(kv.Value.AsStringSlice())
		default:
			v = kv.Value.Emit()
		}
		m[string(kv.Key)] = v
	}
	return m
}

func toAny[T any](s []T) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}
