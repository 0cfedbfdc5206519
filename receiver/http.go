package receiver

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"

	"github.com/trace-capture/trace-capture/receiver/archive"
)

// TracesPath is the OTLP/HTTP path of traces.
const TracesPath = "/v1/traces"

// httpHandler serves OTLP/HTTP traces.
type httpHandler struct {
	sink    Sink
	counter RefusalCounter // nil when the sink does not count refusals
	max     int
	gzip    gzipDecompressor
	zstd    *zstdDecompressor
}

func newHTTPHandler(sink Sink, maxBytes int) *httpHandler {
	h := &httpHandler{sink: sink, max: maxBytes, zstd: newZstdDecompressor(maxBytes)}
	h.counter, _ = sink.(RefusalCounter)
	return h
}

// httpError is an answer other than 200.
type httpError struct {
	status int
	code   codes.Code
	reason Reason
	msg    string
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Errors are answered in the request's encoding; without a supported
	// Content-Type, in JSON (readable with curl).
	isJSON, ok := parseContentType(r.Header.Get("Content-Type"))
	if r.URL.Path != TracesPath {
		h.fail(w, r, isJSON || !ok, 0, &httpError{http.StatusNotFound, codes.Unimplemented, ReasonWrongPath,
			fmt.Sprintf("path %s is not served: OTLP traces go to POST %s", r.URL.Path, TracesPath)})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, r, isJSON || !ok, 0, &httpError{http.StatusMethodNotAllowed, codes.Unimplemented, ReasonWrongMethod,
			fmt.Sprintf("method %s is not allowed: OTLP traces are sent with POST", r.Method)})
		return
	}
	if !ok {
		h.fail(w, r, true, 0, &httpError{http.StatusUnsupportedMediaType, codes.InvalidArgument, ReasonUnsupportedContentType,
			fmt.Sprintf("content type %q is not supported: send %s or %s", r.Header.Get("Content-Type"), contentTypeProtobuf, contentTypeJSON)})
		return
	}

	req := getRequest()
	defer putRequest(req)
	n, herr := h.readBody(r, req)
	if herr != nil {
		h.fail(w, r, isJSON, n, herr)
		return
	}
	body := req.buf
	if isJSON {
		var err error
		if body, err = jsonToProto(body); err != nil {
			h.fail(w, r, isJSON, n, &httpError{http.StatusBadRequest, codes.InvalidArgument, ReasonMalformedJSON,
				"malformed OTLP/JSON trace request: " + err.Error()})
			return
		}
	}
	res, err := req.sc.scan(body, make([]Resource, 0, 4))
	if err != nil {
		h.fail(w, r, isJSON, n, &httpError{http.StatusBadRequest, codes.InvalidArgument, ReasonMalformedProtobuf, err.Error()})
		return
	}
	batch := Batch{Transport: TransportHTTP, JSON: isJSON, Peer: r.RemoteAddr, Resources: res}
	err = h.sink.Consume(r.Context(), body, batch)
	var partial *PartialSuccessError
	var retry *RetryableError
	switch {
	case err == nil:
		writeSuccess(w, isJSON, 0, "")
	case errors.As(err, &partial):
		writeSuccess(w, isJSON, partial.RejectedSpans, partial.Message)
	case errors.As(err, &retry):
		secs := int64((retry.RetryAfter + 999_999_999) / 1_000_000_000)
		if secs > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		}
		writeStatus(w, isJSON, http.StatusServiceUnavailable, codes.Unavailable, err.Error())
	case errors.Is(err, archive.ErrRecordTooLarge):
		writeStatus(w, isJSON, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, err.Error())
	default:
		writeStatus(w, isJSON, http.StatusInternalServerError, codes.Internal, err.Error())
	}
}

// readBody reads the decompressed body into req.buf and returns its size.
func (h *httpHandler) readBody(r *http.Request, req *request) (int, *httpError) {
	var dec decompressor
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		if r.ContentLength > int64(h.max) {
			return int(r.ContentLength), h.tooLarge(r.ContentLength)
		}
	case "gzip", "x-gzip":
		dec = &h.gzip
	case "zstd":
		dec = h.zstd
	default:
		return 0, &httpError{http.StatusUnsupportedMediaType, codes.InvalidArgument, ReasonUnsupportedEncoding,
			fmt.Sprintf("content encoding %q is not supported: send gzip, zstd or none", enc)}
	}
	src := &sourceReader{r: r.Body}
	var in io.Reader = src
	hint := r.ContentLength
	if dec != nil {
		zr, err := dec.open(src)
		if err != nil {
			if src.err != nil {
				return 0, h.readError(src.err)
			}
			return 0, &httpError{http.StatusBadRequest, codes.InvalidArgument, ReasonDecompression,
				"decompress request body: " + err.Error()}
		}
		defer dec.release(zr)
		in, hint = zr, 0
	}
	buf, err := readLimited(in, req.buf, hint, h.max)
	req.buf = buf
	switch {
	case err == nil:
		return len(buf), nil
	case errors.Is(err, errTooLarge):
		return h.max + 1, h.tooLarge(-1)
	case src.err != nil:
		return len(buf), h.readError(src.err)
	default:
		return len(buf), &httpError{http.StatusBadRequest, codes.InvalidArgument, ReasonDecompression,
			"decompress request body: " + err.Error()}
	}
}

func (h *httpHandler) tooLarge(size int64) *httpError {
	what := "the request body is larger than"
	if size >= 0 {
		what = fmt.Sprintf("the request body of %d bytes is larger than", size)
	}
	return &httpError{http.StatusRequestEntityTooLarge, codes.ResourceExhausted, ReasonTooLarge,
		fmt.Sprintf("%s the receiver's limit of %d bytes (after decompression); raise it with %s", what, h.max, MaxRequestBytesFlag)}
}

func (h *httpHandler) readError(err error) *httpError {
	return &httpError{http.StatusBadRequest, codes.InvalidArgument, ReasonReadError, "read request body: " + err.Error()}
}

func (h *httpHandler) fail(w http.ResponseWriter, r *http.Request, isJSON bool, size int, e *httpError) {
	if h.counter != nil {
		h.counter.CountRefusal(Refusal{Reason: e.reason, Transport: TransportHTTP, Peer: r.RemoteAddr, Bytes: size, Err: errors.New(e.msg)})
	}
	switch e.status {
	case http.StatusBadRequest:
	default:
		// The body may be unread: do not keep the connection for it.
		w.Header().Set("Connection", "close")
	}
	writeStatus(w, isJSON, e.status, e.code, e.msg)
}

// parseContentType tells OTLP/JSON from OTLP/protobuf; ok is false for
// anything else.
func parseContentType(ct string) (isJSON, ok bool) {
	switch ct {
	case contentTypeProtobuf:
		return false, true
	case contentTypeJSON:
		return true, true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false, false
	}
	switch mt {
	case contentTypeProtobuf, "application/protobuf":
		return false, true
	case contentTypeJSON:
		return true, true
	}
	return false, false
}

func jsonToProto(body []byte) ([]byte, error) {
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(body)
	if err != nil {
		return nil, err
	}
	return (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
}

func writeStatus(w http.ResponseWriter, isJSON bool, status int, code codes.Code, msg string) {
	if isJSON {
		write(w, contentTypeJSON, status, statusJSON(int32(code), msg))
		return
	}
	write(w, contentTypeProtobuf, status, statusProto(int32(code), msg))
}

// writeSuccess answers 200 with an ExportTraceServiceResponse that rejects
// n spans (none: a full success).
func writeSuccess(w http.ResponseWriter, isJSON bool, n int64, msg string) {
	if isJSON {
		write(w, contentTypeJSON, http.StatusOK, partialSuccessJSON(n, msg))
		return
	}
	write(w, contentTypeProtobuf, http.StatusOK, partialSuccessProto(n, msg))
}

func write(w http.ResponseWriter, contentType string, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the sender is gone if this fails; nothing to do
}
