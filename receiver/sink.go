package receiver

import (
	"context"
	"errors"
	"time"
)

// Sink takes the requests the receiver accepted.
//
// Consume gets req, a request that Scan accepted, in the protobuf wire
// format (OTLP/JSON requests are re-encoded), and b, what Scan found in it.
// req is only valid until Consume returns: a Sink that keeps it must copy it
// (b is the Sink's to keep). Consume is called concurrently; ctx is the
// request's, canceled when the sender goes away or the receiver stops.
//
// The error decides the answer to the sender: nil is a full success; a
// *PartialSuccessError a success that names the spans rejected; an error
// wrapping a *RetryableError asks the sender to retry later (HTTP 503 with
// Retry-After, gRPC Unavailable with RetryInfo); an error matching
// archive.ErrRecordTooLarge is a request too large (HTTP 413, gRPC
// ResourceExhausted); any other error is a permanent failure (HTTP 500, gRPC
// Internal).
type Sink interface {
	Consume(ctx context.Context, req []byte, b Batch) error
}

// RefusalCounter is implemented by Sinks that also count the requests the
// receiver refused before they reached Consume. CountRefusal is called
// concurrently and must be cheap.
type RefusalCounter interface {
	CountRefusal(r Refusal)
}

// Transport names how a request arrived.
type Transport string

// Transports.
const (
	TransportGRPC Transport = "grpc"
	TransportHTTP Transport = "http"
)

// Batch describes one accepted request.
type Batch struct {
	// Transport is how the request arrived.
	Transport Transport
	// JSON is set when the request came as OTLP/JSON.
	JSON bool
	// Peer is the sender's address (host:port), when known.
	Peer string
	// Resources has one entry per ResourceSpans of the request, in order.
	Resources []Resource
}

// Spans returns the number of spans in the request.
func (b Batch) Spans() int {
	n := 0
	for _, r := range b.Resources {
		n += r.Spans
	}
	return n
}

// Reason says why a request was refused or its spans dropped. The values are
// stable identifiers, fit for a manifest.
type Reason string

// Reasons.
const (
	// ReasonMalformedProtobuf: the body is not an ExportTraceServiceRequest.
	ReasonMalformedProtobuf Reason = "malformed_protobuf"
	// ReasonMalformedJSON: the body is not OTLP/JSON.
	ReasonMalformedJSON Reason = "malformed_json"
	// ReasonUnsupportedContentType: an HTTP Content-Type other than
	// application/x-protobuf or application/json.
	ReasonUnsupportedContentType Reason = "unsupported_content_type"
	// ReasonUnsupportedEncoding: a Content-Encoding other than gzip, zstd
	// or none.
	ReasonUnsupportedEncoding Reason = "unsupported_encoding"
	// ReasonTooLarge: the request is above Config.MaxRequestBytes.
	ReasonTooLarge Reason = "too_large"
	// ReasonDecompression: the compressed body does not decompress.
	ReasonDecompression Reason = "decompression"
	// ReasonReadError: the body could not be read (the sender went away).
	ReasonReadError Reason = "read_error"
	// ReasonWrongPath: an HTTP path other than /v1/traces, or a gRPC
	// service other than the TraceService (metrics or logs, say).
	ReasonWrongPath Reason = "wrong_path"
	// ReasonWrongMethod: an HTTP method other than POST.
	ReasonWrongMethod Reason = "wrong_method"
	// ReasonBudget: the Recorder's byte budget is spent.
	ReasonBudget Reason = "budget"
	// ReasonWriteError: the Recorder could not write the request.
	ReasonWriteError Reason = "write_error"
)

// Refusal describes a request the receiver refused before Consume.
type Refusal struct {
	Reason    Reason
	Transport Transport
	// Peer is the sender's address, when known.
	Peer string
	// Bytes is how much of the request was read (decompressed), when known.
	Bytes int
	// Err is the error that was sent back.
	Err error
}

// ErrBudgetExceeded is matched (errors.Is) by the error a Recorder returns
// when a request would take its archive past its byte budget.
var ErrBudgetExceeded = errors.New("span archive byte budget exceeded")

// RetryableError is a Sink error that asks the sender to retry after
// RetryAfter.
type RetryableError struct {
	Err        error
	RetryAfter time.Duration
}

func (e *RetryableError) Error() string { return e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// PartialSuccessError is a Sink error saying the request was taken except
// for RejectedSpans spans. The sender gets a success with an OTLP
// partial_success that carries Message.
type PartialSuccessError struct {
	RejectedSpans int64
	Message       string
}

func (e *PartialSuccessError) Error() string { return e.Message }
