package analyze

import (
	"log/slog"
	"time"
)

// RecordSource produces raw OTLP protobuf ExportTraceServiceRequest records.
// It calls yield once per record and stops at the first error yield returns,
// returning that error. The record slice only needs to stay valid during the
// yield call: Run copies what it keeps. A RecordSource for a span archive:
//
//	src := func(yield func([]byte) error) error {
//		return archive.ForEachFile(path, archive.ReaderOptions{}, yield)
//	}
type RecordSource func(yield func(rec []byte) error) error

// Options configures Run. The zero value is usable.
type Options struct {
	// Top bounds the ranked lists (slow traces, long-lived traces; slow
	// paths get 2×Top). Zero means 10; at most 1000.
	Top int
	// MaxTraceSpans bounds the spans listed per slow trace. Zero means 2000.
	MaxTraceSpans int
	// MaxOperations bounds the operations table (most critical-path time
	// first) and every other table with one row per distinct name
	// (services, edges, errors, Kubernetes groups, ...). Zero means 1000.
	MaxOperations int
	// SkewCap is the largest clock adjustment applied to a host; larger
	// estimates are clamped and reported. Zero means 1 s; negative disables
	// adjustment (offsets are still estimated and reported).
	SkewCap time.Duration
	// Baseline, when not nil, is compared with this capture's result.
	Baseline *Result
	// BaselineLabel names the baseline in the report.
	BaselineLabel string
	// Sources are the capture sources described by the bundle manifest; used
	// for the "sent nothing" and "dropped" warnings. May be empty.
	Sources []SourceInfo
	// Dropped counts spans dropped by the receiver that cannot be attributed
	// to a source, per reason.
	Dropped map[string]int64
	// Logger receives debug progress messages. Nil discards them.
	Logger *slog.Logger
	// Progress, when not nil, is called with the number of spans decoded so
	// far, about every 64k spans and once at the end of decoding.
	Progress func(spans int64)
}

// SourceInfo is what the capture manifest says about one source.
type SourceInfo struct {
	// Name is the source name, e.g. "kube-apiserver".
	Name string
	// Services are the service.name values the source emits, e.g.
	// ["apiserver"]. A source without services is matched by Name.
	Services []string
	// ReceivedSpans is the receiver's span count for the source; -1 unknown.
	ReceivedSpans int64
	// Dropped counts spans lost per reason.
	Dropped map[string]int64
	// Note is free text carried into the report.
	Note string
}

func (o *Options) top() int {
	if o.Top <= 0 {
		return 10
	}
	return min(o.Top, 1000)
}

func (o *Options) maxTraceSpans() int {
	if o.MaxTraceSpans <= 0 {
		return 2000
	}
	return o.MaxTraceSpans
}

func (o *Options) maxOperations() int {
	if o.MaxOperations <= 0 {
		return 1000
	}
	return o.MaxOperations
}

func (o *Options) skewCap() int64 {
	switch {
	case o.SkewCap < 0:
		return 0
	case o.SkewCap == 0:
		return int64(time.Second)
	}
	return int64(o.SkewCap)
}
