package receiver

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// checkingSink fails the fuzz run when the receiver hands it a request that
// does not decode or whose batch miscounts the spans.
type checkingSink struct {
	t        *testing.T
	consumed bool
}

func (s *checkingSink) Consume(_ context.Context, req []byte, b Batch) error {
	s.consumed = true
	er := ptraceotlp.NewExportRequest()
	if err := er.UnmarshalProto(req); err != nil {
		s.t.Fatalf("the receiver accepted a request that does not decode: %v", err)
	}
	if n := er.Traces().SpanCount(); n != b.Spans() {
		s.t.Fatalf("the batch says %d spans, the request holds %d", b.Spans(), n)
	}
	return nil
}

// Fuzz encodings: how the body is sent.
const (
	fuzzPlain     = iota
	fuzzGzip      // the body, gzipped
	fuzzZstd      // the body, zstd-compressed
	fuzzFakeGzip  // the body as is, labeled gzip
	fuzzFakeZstd  // the body as is, labeled zstd
	fuzzEncodings // count
)

func FuzzHTTPHandler(f *testing.F) {
	for i, req := range seedRequests(f) {
		f.Add(req, uint8(2*(i%fuzzEncodings)))
		js, err := (&ptrace.JSONMarshaler{}).MarshalTraces(mustDecode(f, req))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(js, uint8(2*(i%fuzzEncodings)+1))
	}
	f.Add([]byte("{}"), uint8(1))
	f.Add([]byte{}, uint8(0))
	f.Add(bytes.Repeat([]byte{0}, 4096), uint8(2*fuzzGzip))

	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		f.Fatal(err)
	}
	const limit = 256 << 10
	f.Fuzz(func(t *testing.T, body []byte, kind uint8) {
		isJSON := kind&1 == 1
		ct := contentTypeProtobuf
		if isJSON {
			ct = contentTypeJSON
		}
		var encoding string
		switch (kind >> 1) % fuzzEncodings {
		case fuzzGzip:
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(body)
			zw.Close()
			body, encoding = buf.Bytes(), "gzip"
		case fuzzZstd:
			body, encoding = zenc.EncodeAll(body, nil), "zstd"
		case fuzzFakeGzip:
			encoding = "gzip"
		case fuzzFakeZstd:
			encoding = "zstd"
		}
		sink := &checkingSink{t: t}
		h := newHTTPHandler(sink, limit)
		req := httptest.NewRequest(http.MethodPost, TracesPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if encoding != "" {
			req.Header.Set("Content-Encoding", encoding)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)

		res := w.Result()
		if got := res.Header.Get("Content-Type"); got != ct {
			t.Fatalf("answer of type %q to a request of type %q", got, ct)
		}
		switch res.StatusCode {
		case http.StatusOK:
			if !sink.consumed {
				t.Fatal("200 without a call to the sink")
			}
			r := ptraceotlp.NewExportResponse()
			if err := decodeAs(isJSON, w.Body.Bytes(), r.UnmarshalJSON, r.UnmarshalProto); err != nil {
				t.Fatalf("200 with a body that is not an ExportTraceServiceResponse: %v", err)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if sink.consumed {
				t.Fatalf("%d after the sink took the request", res.StatusCode)
			}
			var st spb.Status
			um := func(b []byte) error { return proto.Unmarshal(b, &st) }
			uj := func(b []byte) error { return protojson.Unmarshal(b, &st) }
			if err := decodeAs(isJSON, w.Body.Bytes(), uj, um); err != nil || st.Message == "" {
				t.Fatalf("%d with a body that is not a Status with a message (%v): %q", res.StatusCode, err, w.Body.Bytes())
			}
		default:
			t.Fatalf("unexpected status %d: %s", res.StatusCode, w.Body.Bytes())
		}
	})
}

func decodeAs(isJSON bool, b []byte, fromJSON, fromProto func([]byte) error) error {
	if isJSON {
		return fromJSON(b)
	}
	if err := fromProto(b); err != nil {
		return fmt.Errorf("decode protobuf: %w", err)
	}
	return nil
}
