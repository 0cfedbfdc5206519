package receiver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/trace-capture/trace-capture/receiver/archive"
)

type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func post(t *testing.T, method, url, contentType, encoding string, body []byte) httpResult {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return httpResult{status: resp.StatusCode, header: resp.Header, body: b}
}

// statusMessage decodes the google.rpc.Status of an error answer, in the
// encoding its Content-Type names.
func statusMessage(t *testing.T, r httpResult) (int32, string) {
	t.Helper()
	switch r.header.Get("Content-Type") {
	case contentTypeProtobuf:
		var st spb.Status
		if err := proto.Unmarshal(r.body, &st); err != nil {
			t.Fatalf("decode protobuf Status %q: %v", r.body, err)
		}
		return st.Code, st.Message
	case contentTypeJSON:
		var st spb.Status
		if err := (protojsonUnmarshal(r.body, &st)); err != nil {
			t.Fatalf("decode JSON Status %q: %v", r.body, err)
		}
		return st.Code, st.Message
	default:
		t.Fatalf("error answer with Content-Type %q", r.header.Get("Content-Type"))
		return 0, ""
	}
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstded(t testing.TB, b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// bomb compresses n zero bytes with w: a small body that decompresses to a
// huge one.
func bomb(t testing.TB, n int64, newWriter func(io.Writer) io.WriteCloser) []byte {
	var buf bytes.Buffer
	zw := newWriter(&buf)
	if _, err := io.CopyN(zw, zeros{}, n); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestHTTPBadInput(t *testing.T) {
	const limit = 1 << 20
	cfg := loopback()
	cfg.MaxRequestBytes = limit
	r, rec, stop := startRecording(t, cfg, RecorderOptions{})
	url := "http://" + r.Addrs().HTTP + TracesPath

	good := newSynthBatch(1, 100).req
	if res := post(t, http.MethodPost, url, contentTypeProtobuf, "", good); res.status != http.StatusOK {
		t.Fatalf("good request: %d %s", res.status, res.body)
	}
	jsonBody, err := (&ptrace.JSONMarshaler{}).MarshalTraces(mustDecode(t, good))
	if err != nil {
		t.Fatal(err)
	}
	gzipBomb := bomb(t, 64<<20, func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) })
	zstdBomb := bomb(t, 256<<20, func(w io.Writer) io.WriteCloser {
		zw, err := zstd.NewWriter(w)
		if err != nil {
			t.Fatal(err)
		}
		return zw
	})
	if len(gzipBomb) > limit || len(zstdBomb) > limit {
		t.Fatalf("bombs of %d and %d bytes are not small", len(gzipBomb), len(zstdBomb))
	}
	big := bytes.Repeat(good, limit/len(good)+1)

	tests := []struct {
		name, method, path, contentType, encoding string
		body                                      []byte
		status                                    int
		reason                                    Reason
		contains                                  string
	}{
		{"malformed protobuf", "POST", TracesPath, contentTypeProtobuf, "", []byte("not a protobuf \xff\xff"), 400, ReasonMalformedProtobuf, "malformed OTLP trace request"},
		{"truncated protobuf", "POST", TracesPath, contentTypeProtobuf, "", good[:len(good)/2], 400, ReasonMalformedProtobuf, "truncated"},
		{"malformed JSON", "POST", TracesPath, contentTypeJSON, "", []byte(`{"resourceSpans": [`), 400, ReasonMalformedJSON, "malformed OTLP/JSON"},
		{"JSON with a bad trace id", "POST", TracesPath, contentTypeJSON, "", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}`), 400, ReasonMalformedJSON, "malformed OTLP/JSON"},
		{"wrong content type", "POST", TracesPath, "text/plain", "", good, 415, ReasonUnsupportedContentType, "application/x-protobuf"},
		{"no content type", "POST", TracesPath, "", "", good, 415, ReasonUnsupportedContentType, "not supported"},
		{"unsupported encoding", "POST", TracesPath, contentTypeProtobuf, "br", good, 415, ReasonUnsupportedEncoding, `"br"`},
		{"corrupt gzip", "POST", TracesPath, contentTypeProtobuf, "gzip", []byte("\x1f\x8b not gzip at all"), 400, ReasonDecompression, "decompress"},
		{"corrupt zstd", "POST", TracesPath, contentTypeProtobuf, "zstd", append(zstded(t, good)[:40], 0xff, 0xff), 400, ReasonDecompression, "decompress"},
		{"oversized body", "POST", TracesPath, contentTypeProtobuf, "", big, 413, ReasonTooLarge, MaxRequestBytesFlag},
		{"gzip bomb", "POST", TracesPath, contentTypeProtobuf, "gzip", gzipBomb, 413, ReasonTooLarge, "1048576 bytes"},
		{"zstd bomb", "POST", TracesPath, contentTypeJSON, "zstd", zstdBomb, 413, ReasonTooLarge, MaxRequestBytesFlag},
		{"wrong method", "GET", TracesPath, "", "", nil, 405, ReasonWrongMethod, "POST"},
		{"wrong path", "POST", "/v1/metrics", contentTypeProtobuf, "", good, 404, ReasonWrongPath, TracesPath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := post(t, tc.method, "http://"+r.Addrs().HTTP+tc.path, tc.contentType, tc.encoding, tc.body)
			if res.status != tc.status {
				t.Fatalf("status %d (%s), want %d", res.status, res.body, tc.status)
			}
			if tc.contentType == contentTypeJSON && res.header.Get("Content-Type") != contentTypeJSON {
				t.Errorf("a JSON request got an answer of type %q", res.header.Get("Content-Type"))
			}
			if tc.contentType == contentTypeProtobuf && res.header.Get("Content-Type") != contentTypeProtobuf {
				t.Errorf("a protobuf request got an answer of type %q", res.header.Get("Content-Type"))
			}
			if tc.status == 405 && res.header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", res.header.Get("Allow"))
			}
			_, msg := statusMessage(t, res)
			if !strings.Contains(msg, tc.contains) {
				t.Errorf("message %q does not mention %q", msg, tc.contains)
			}
		})
	}

	// JSON is accepted and recorded as protobuf, and a good request after all
	// that still goes through.
	res := post(t, http.MethodPost, url, contentTypeJSON, "", jsonBody)
	if res.status != http.StatusOK || res.header.Get("Content-Type") != contentTypeJSON || string(res.body) != "{}" {
		t.Fatalf("JSON request: %d %q %s", res.status, res.header.Get("Content-Type"), res.body)
	}
	for _, enc := range []struct {
		name string
		body []byte
	}{{"gzip", gzipped(t, good)}, {"zstd", zstded(t, good)}} {
		if res := post(t, http.MethodPost, url, contentTypeProtobuf, enc.name, enc.body); res.status != http.StatusOK {
			t.Fatalf("%s request: %d %s", enc.name, res.status, res.body)
		}
	}

	st := rec.Stats()
	refused := map[Reason]int64{}
	for _, s := range st.Refused {
		refused[s.Reason] += s.Requests
	}
	for _, tc := range tests {
		if refused[tc.reason] == 0 {
			t.Errorf("no refusal counted for %s (%s)", tc.reason, tc.name)
		}
	}
	if refused[ReasonTooLarge] != 3 || refused[ReasonMalformedProtobuf] != 2 {
		t.Errorf("refusals %v: want 3 too large, 2 malformed protobuf", refused)
	}
	if st.Requests != 4 || st.Spans != 400 {
		t.Errorf("recorded %d requests, %d spans; want 4, 400", st.Requests, st.Spans)
	}

	recs := records(t, stop())
	if len(recs) != 4 {
		t.Fatalf("the archive holds %d records, want 4", len(recs))
	}
	for i, r := range recs {
		if !bytes.Equal(r, good) {
			t.Errorf("record %d differs from the request sent", i)
		}
	}
}

func mustDecode(t testing.TB, req []byte) ptrace.Traces {
	t.Helper()
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(req)
	if err != nil {
		t.Fatal(err)
	}
	return td
}

func records(t *testing.T, path string) [][]byte {
	t.Helper()
	var out [][]byte
	if err := archive.ForEachFile(path, archive.ReaderOptions{}, func(rec []byte) error {
		out = append(out, bytes.Clone(rec))
		return nil
	}); err != nil {
		t.Fatalf("read archive: %v", err)
	}
	return out
}

func TestBudget(t *testing.T) {
	batch := newSynthBatch(2, 100)
	const maxBytes = 40 << 10
	r, rec, stop := startRecording(t, loopback(), RecorderOptions{MaxBytes: maxBytes})
	url := "http://" + r.Addrs().HTTP + TracesPath
	conn := dialRaw(t, r.Addrs().GRPC)

	var sent [][]byte
	var last httpResult
	for i := range 100 {
		req := batch.stamp(nil, uint64(i))
		last = post(t, http.MethodPost, url, contentTypeProtobuf, "", req)
		if last.status != http.StatusOK {
			break
		}
		sent = append(sent, req)
	}
	if len(sent) == 0 || len(sent) == 100 {
		t.Fatalf("%d requests went in before the budget ran out", len(sent))
	}
	if last.status != http.StatusServiceUnavailable || last.header.Get("Retry-After") != "30" {
		t.Fatalf("over budget: %d, Retry-After %q; want 503, 30", last.status, last.header.Get("Retry-After"))
	}
	if code, msg := statusMessage(t, last); code != int32(codes.Unavailable) || !strings.Contains(msg, "budget") {
		t.Errorf("over budget: status %d %q", code, msg)
	}

	// gRPC senders are refused too, with RetryInfo.
	err := conn.Invoke(t.Context(), "/"+traceServiceName+"/Export", &rawMsg{b: batch.stamp(nil, 1000)}, &rawMsg{})
	st := status.Convert(err)
	if st.Code() != codes.Unavailable {
		t.Fatalf("gRPC over budget: %v, want Unavailable", err)
	}
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			retry = ri
		}
	}
	if retry == nil || retry.RetryDelay.AsDuration() != BudgetRetryAfter {
		t.Errorf("gRPC over budget: details %v, want RetryInfo of %s", st.Details(), BudgetRetryAfter)
	}

	s := rec.Stats()
	if s.Spans != int64(100*len(sent)) || s.DroppedSpans != 200 {
		t.Errorf("stats: %d spans recorded, %d dropped; want %d, 200", s.Spans, s.DroppedSpans, 100*len(sent))
	}
	if len(s.Sources) != 1 || len(s.Sources[0].Dropped) != 1 || s.Sources[0].Dropped[0] != (DroppedStats{Reason: ReasonBudget, Spans: 200}) {
		t.Errorf("sources %+v: want one, with 200 spans dropped for the budget", s.Sources)
	}
	if len(s.Refused) != 1 || s.Refused[0].Reason != ReasonBudget || s.Refused[0].Requests != 2 || s.Refused[0].Spans != 200 {
		t.Errorf("refused %+v: want 2 requests of 200 spans for the budget", s.Refused)
	}

	path := stop()
	recs := records(t, path)
	if len(recs) != len(sent) {
		t.Fatalf("the archive holds %d records, %d were accepted", len(recs), len(sent))
	}
	for i := range recs {
		if !bytes.Equal(recs[i], sent[i]) {
			t.Errorf("record %d differs from the request sent", i)
		}
	}
	if size := fileSize(t, path); size > maxBytes+16 {
		t.Errorf("the archive is %d bytes, above its budget of %d", size, maxBytes)
	}
}

// rawMsg carries encoded bytes through a gRPC client.
type rawMsg struct{ b []byte }

type rawClientCodec struct{}

func (rawClientCodec) Name() string { return "proto" }
func (rawClientCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*rawMsg).b)}, nil
}
func (rawClientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	v.(*rawMsg).b = data.Materialize()
	return nil
}

func dialRaw(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawClientCodec{}), grpc.MaxCallSendMsgSize(1<<30)))
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestGRPCBadInput(t *testing.T) {
	const limit = 1 << 20
	cfg := loopback()
	cfg.MaxRequestBytes = limit
	r, rec, stop := startRecording(t, cfg, RecorderOptions{})
	conn := dialRaw(t, r.Addrs().GRPC)
	export := "/" + traceServiceName + "/Export"
	good := newSynthBatch(3, 100).req

	tests := []struct {
		name     string
		method   string
		body     []byte
		opts     []grpc.CallOption
		code     codes.Code
		reason   Reason
		contains string
	}{
		{"malformed", export, []byte("\x0a\x05abc"), nil, codes.InvalidArgument, ReasonMalformedProtobuf, "malformed OTLP trace request"},
		// gRPC answers these itself, naming the limit.
		{"too large", export, bytes.Repeat(good, limit/len(good)+1), nil, codes.ResourceExhausted, ReasonTooLarge, "1048576"},
		{"gzip bomb", export, make([]byte, 16<<20), []grpc.CallOption{grpc.UseCompressor("gzip")}, codes.ResourceExhausted, ReasonTooLarge, "1048576"},
		{"metrics", "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", good, nil, codes.Unimplemented, ReasonWrongPath, "traces only"},
		{"other method", "/" + traceServiceName + "/Import", good, nil, codes.Unimplemented, ReasonWrongPath, "traces only"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := conn.Invoke(t.Context(), tc.method, &rawMsg{b: tc.body}, &rawMsg{}, tc.opts...)
			st := status.Convert(err)
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.contains) {
				t.Errorf("got %v, want %s mentioning %q", err, tc.code, tc.contains)
			}
		})
	}

	// What is good still goes in, compressed or not.
	for _, opts := range [][]grpc.CallOption{nil, {grpc.UseCompressor("gzip")}} {
		var reply rawMsg
		if err := conn.Invoke(t.Context(), export, &rawMsg{b: good}, &reply, opts...); err != nil {
			t.Fatalf("good request: %v", err)
		}
		if len(reply.b) != 0 {
			t.Errorf("a full success answered %x, want an empty response", reply.b)
		}
	}
	refused := map[Reason]int64{}
	for _, s := range rec.Stats().Refused {
		refused[s.Reason] = s.Requests
	}
	want := map[Reason]int64{ReasonMalformedProtobuf: 1, ReasonTooLarge: 2, ReasonWrongPath: 2}
	if len(refused) != len(want) {
		t.Errorf("refusals %v, want %v", refused, want)
	}
	for k, v := range want {
		if refused[k] != v {
			t.Errorf("refusals %v, want %v", refused, want)
		}
	}
	recs := records(t, stop())
	if len(recs) != 2 || !bytes.Equal(recs[0], good) || !bytes.Equal(recs[1], good) {
		t.Errorf("the archive holds %d records, want the 2 good requests", len(recs))
	}
}

// failingSink answers every request with err.
type failingSink struct{ err error }

func (s failingSink) Consume(context.Context, []byte, Batch) error { return s.err }

func TestSinkErrorsMapToOTLPAnswers(t *testing.T) {
	good := newSynthBatch(4, 10).req
	tests := []struct {
		name       string
		err        error
		httpStatus int
		grpcCode   codes.Code
		partial    int64
	}{
		{"success", nil, 200, codes.OK, 0},
		{"partial", &PartialSuccessError{RejectedSpans: 3, Message: "3 spans had no name"}, 200, codes.OK, 3},
		{"retryable", &RetryableError{Err: errors.New("busy"), RetryAfter: 1500 * time.Millisecond}, 503, codes.Unavailable, 0},
		{"record too large", archive.ErrRecordTooLarge, 413, codes.ResourceExhausted, 0},
		{"other", errors.New("disk full"), 500, codes.Internal, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(loopback(), failingSink{tc.err}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer r.Shutdown(context.Background())

			res := post(t, http.MethodPost, "http://"+r.Addrs().HTTP+TracesPath, contentTypeProtobuf, "", good)
			if res.status != tc.httpStatus {
				t.Errorf("HTTP status %d, want %d", res.status, tc.httpStatus)
			}
			if tc.name == "retryable" && res.header.Get("Retry-After") != "2" {
				t.Errorf("Retry-After %q, want 2 (seconds, rounded up)", res.header.Get("Retry-After"))
			}
			var reply rawMsg
			err = dialRaw(t, r.Addrs().GRPC).Invoke(t.Context(), "/"+traceServiceName+"/Export", &rawMsg{b: good}, &reply)
			if status.Code(err) != tc.grpcCode {
				t.Errorf("gRPC: %v, want %s", err, tc.grpcCode)
			}
			if tc.httpStatus != 200 {
				return
			}
			// The HTTP body and the gRPC reply carry the partial success.
			for _, body := range [][]byte{res.body, reply.b} {
				resp := ptraceotlpResponse(t, body)
				if resp.PartialSuccess().RejectedSpans() != tc.partial {
					t.Errorf("rejected spans %d, want %d", resp.PartialSuccess().RejectedSpans(), tc.partial)
				}
			}
			jres := post(t, http.MethodPost, "http://"+r.Addrs().HTTP+TracesPath, contentTypeJSON, "", []byte(`{}`))
			resp := ptraceotlpResponseJSON(t, jres.body)
			if resp.PartialSuccess().RejectedSpans() != tc.partial {
				t.Errorf("JSON: rejected spans %d, want %d (%s)", resp.PartialSuccess().RejectedSpans(), tc.partial, jres.body)
			}
		})
	}
}
