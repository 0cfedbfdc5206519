package analyze

// SchemaVersion is the version of the Result JSON schema (docs/report-json.md).
// It changes only when a field is removed or changes meaning; new fields may
// be added within a version.
const SchemaVersion = 1

// Result is the whole analysis of one capture: plain data with JSON tags, the
// content of report.json. Every list is sorted (see each field) so that the
// same input always gives byte-identical JSON. All durations are
// milliseconds as float64 computed from integer nanoseconds (ns / 1e6).
type Result struct {
	// SchemaVersion is SchemaVersion at the time of writing.
	SchemaVersion int `json:"schema_version"`
	// Summary holds the headline counts and the time window of the capture.
	Summary Summary `json:"summary"`
	// Sources lists the capture sources (components) the caller described in
	// Options.Sources, with what was seen of each; sorted by name. Empty when
	// the caller passed none.
	Sources []Source `json:"sources"`
	// Services lists every service.name seen, sorted by name.
	Services []Service `json:"services"`
	// Edges are the cross-component calls: parent/child span pairs whose
	// services differ, grouped by (client service, server service). Sorted by
	// client_ms.p99 descending, then by client, server.
	Edges []Edge `json:"edges"`
	// Loopback holds CLIENT→SERVER span pairs inside one service (e.g. the
	// kube-apiserver's loopback client calling itself), grouped like Edges.
	// They are not cross-component edges. Sorted like Edges.
	Loopback []Edge `json:"loopback"`
	// Operations holds one row per (service, kind, span name). Sorted by
	// critical_path_ms_total descending, then service, name, kind.
	Operations []Operation `json:"operations"`
	// RootOperations aggregates critical-path time per root operation: the
	// operation of each (non-long-lived) trace's longest root span, or of
	// the SERVER span right under it when that root is an INTERNAL span of
	// the same service (the kube-apiserver's "authentication" filter span
	// starts before the request's SERVER span). Sorted by total ms
	// descending, then service, name.
	RootOperations []RootOperation `json:"root_operations"`
	// SlowPaths are the chains of "service: operation" from a trace's root
	// to its bottleneck span, ranked by total time. At most 2×Options.Top.
	SlowPaths []SlowPath `json:"slow_paths"`
	// SlowTraces are the slowest traces (long-lived ones excluded) with their
	// span trees, slowest first. At most Options.Top.
	SlowTraces []Trace `json:"slow_traces"`
	// LongLived lists the longest long-lived traces (watches, streams) that
	// were kept out of SlowTraces and SlowPaths, longest first. At most
	// Options.Top; Summary.LongLivedTraces has the full count.
	LongLived []LongLivedTrace `json:"long_lived"`
	// Errors groups spans with status ERROR by (service, kind, operation).
	// Sorted by count descending, then service, name.
	Errors []ErrorGroup `json:"errors"`
	// ClockSkew reports every host's estimated clock offset and the
	// adjustment applied; sorted by host. Hosts without client/server pairs
	// to another host are listed with pairs = 0.
	ClockSkew []ClockSkew `json:"clock_skew"`
	// Kubernetes groups the spans of known Kubernetes components by the
	// attributes those components emit.
	Kubernetes Kubernetes `json:"kubernetes"`
	// Warnings are capture-quality and data-quality findings. Sorted by
	// severity (warning before info), then code.
	Warnings []Warning `json:"warnings"`
	// Baseline is the comparison with Options.Baseline; nil without one.
	Baseline *BaselineDiff `json:"baseline,omitempty"`
}

// Summary holds the headline counts of a capture.
type Summary struct {
	// Records is the number of OTLP ExportTraceServiceRequest records read.
	Records int64 `json:"records"`
	// RecordBytes is the total size of those records.
	RecordBytes int64 `json:"record_bytes"`
	// BadRecords counts records that could not be decoded (fully or partly);
	// see the warning "bad_records".
	BadRecords int64 `json:"bad_records"`
	// Spans is the number of distinct spans analyzed (after removing
	// duplicates).
	Spans int64 `json:"spans"`
	// DuplicateSpans counts spans removed as duplicates of another span with
	// the same trace id and span id.
	DuplicateSpans int64 `json:"duplicate_spans"`
	// Traces is the number of distinct trace ids.
	Traces int64 `json:"traces"`
	// Services is the number of distinct service.name values.
	Services int `json:"services"`
	// OrphanSpans counts spans whose parent span id is set but whose parent
	// is not in the capture. They are kept and treated as roots.
	OrphanSpans int64 `json:"orphan_spans"`
	// ErrorSpans counts spans with status code ERROR.
	ErrorSpans int64 `json:"error_spans"`
	// LongLivedSpans counts spans classified as long-lived (watches, streams
	// and their ancestors); their durations are not request latencies.
	LongLivedSpans int64 `json:"long_lived_spans"`
	// LongLivedTraces counts traces whose root span is long-lived (lone
	// kube-apiserver authentication spans matched to their request are not
	// counted: their request's trace is).
	LongLivedTraces int64 `json:"long_lived_traces"`
	// LinkedSpans counts spans carrying span links (e.g. the kube-apiserver's
	// SERVER span for an untrusted client's traceparent).
	LinkedSpans int64 `json:"linked_spans"`
	// Window is the time range covered by the spans.
	Window Window `json:"window"`
}

// Window is a time range.
type Window struct {
	// Start is the earliest span start, RFC 3339 with nanoseconds, UTC.
	// Empty when there are no spans.
	Start string `json:"start"`
	// End is the latest span end, same format.
	End string `json:"end"`
	// DurationMs is End - Start in milliseconds.
	DurationMs float64 `json:"duration_ms"`
}

// Percentiles summarizes a set of durations in milliseconds. The
// percentiles are exact nearest-rank values: for n sorted values, pXX is
// the element at index max(1, ceil(XX/100·n)) − 1. All zero for an empty set.
type Percentiles struct {
	// P50 is the median (nearest rank).
	P50 float64 `json:"p50"`
	// P90 is the 90th percentile (nearest rank).
	P90 float64 `json:"p90"`
	// P99 is the 99th percentile (nearest rank).
	P99 float64 `json:"p99"`
	// Max is the largest value.
	Max float64 `json:"max"`
}

// Source describes one capture source (a component the capture tried to
// trace), combining the caller's manifest facts with what was analyzed.
type Source struct {
	// Name is the source name as the capture manifest knows it, e.g.
	// "kube-apiserver".
	Name string `json:"name"`
	// Services are the service.name values this source is expected to emit.
	Services []string `json:"services"`
	// ReceivedSpans is the number of spans the receiver counted for this
	// source, or -1 when unknown.
	ReceivedSpans int64 `json:"received_spans"`
	// AnalyzedSpans is the number of spans analyzed whose service is one of
	// Services.
	AnalyzedSpans int64 `json:"analyzed_spans"`
	// Dropped counts spans lost before they reached the archive, per reason
	// (as the manifest names it). Omitted when none.
	Dropped map[string]int64 `json:"dropped,omitempty"`
	// SentNothing is true when no span of this source was analyzed.
	SentNothing bool `json:"sent_nothing"`
	// Note is free text from the manifest (why the source is missing, ...).
	Note string `json:"note,omitempty"`
}

// Service is one service.name.
type Service struct {
	// Name is the service.name resource attribute ("unknown_service" when
	// absent).
	Name string `json:"name"`
	// Instances are the distinct host.name (else service.instance.id) values
	// seen for this service, sorted, at most 20.
	Instances []string `json:"instances"`
	// Spans is the number of spans of this service.
	Spans int64 `json:"spans"`
	// ErrorSpans counts its spans with status ERROR.
	ErrorSpans int64 `json:"error_spans"`
	// SelfMsTotal is the sum of self time of its spans (duration minus the
	// union of its children's intervals, clipped to the span), long-lived
	// spans excluded.
	SelfMsTotal float64 `json:"self_ms_total"`
	// CriticalPathMsTotal is the time its spans hold on the critical paths of
	// all non-long-lived traces.
	CriticalPathMsTotal float64 `json:"critical_path_ms_total"`
}

// Edge aggregates the parent/child span pairs between two services.
type Edge struct {
	// ClientService is the parent span's service.
	ClientService string `json:"client_service"`
	// ServerService is the child span's service.
	ServerService string `json:"server_service"`
	// Calls is the number of pairs (every pair, long-lived ones included).
	Calls int64 `json:"calls"`
	// Errors counts pairs where either span has status ERROR.
	Errors int64 `json:"errors"`
	// LongLived counts pairs where either span is long-lived (a watch or
	// stream); they are included in Calls and the latencies.
	LongLived int64 `json:"long_lived"`
	// ClientMs is the distribution of the parent (client-side) durations.
	ClientMs Percentiles `json:"client_ms"`
	// ServerMs is the distribution of the child (server-side) durations.
	ServerMs Percentiles `json:"server_ms"`
	// GapMs is the distribution of client − server per pair (network,
	// queueing, serialization). Negative when the server span is longer.
	GapMs Percentiles `json:"gap_ms"`
	// ClientMsTotal is the sum of client durations.
	ClientMsTotal float64 `json:"client_ms_total"`
	// Operations breaks the edge down by (client operation, server
	// operation); sorted by calls descending, then names. At most 50; see
	// OperationsOmitted.
	Operations []EdgeOperation `json:"operations"`
	// OperationsOmitted counts breakdown rows left out of Operations.
	OperationsOmitted int `json:"operations_omitted,omitempty"`
	// ExemplarTraceIDs are the trace ids of the slowest pairs (by client
	// duration), at most 3.
	ExemplarTraceIDs []string `json:"exemplar_trace_ids"`
}

// EdgeOperation is one (client operation, server operation) row of an Edge.
type EdgeOperation struct {
	// ClientOperation is the parent span's name.
	ClientOperation string `json:"client_operation"`
	// ServerOperation is the child span's name.
	ServerOperation string `json:"server_operation"`
	// Calls is the number of pairs.
	Calls int64 `json:"calls"`
	// Errors counts pairs where either span has status ERROR.
	Errors int64 `json:"errors"`
	// LongLived counts long-lived pairs (included in the figures).
	LongLived int64 `json:"long_lived"`
	// ClientMs is the distribution of the parent durations.
	ClientMs Percentiles `json:"client_ms"`
	// ServerMs is the distribution of the child durations.
	ServerMs Percentiles `json:"server_ms"`
	// GapMs is the distribution of client − server per pair.
	GapMs Percentiles `json:"gap_ms"`
}

// Operation aggregates the spans of one (service, kind, name).
type Operation struct {
	// Service is the span's service.
	Service string `json:"service"`
	// Name is the span name (for kube-apiserver SERVER spans a route
	// template such as "GET /api/v1/namespaces/{:namespace}/pods").
	Name string `json:"name"`
	// Kind is the span kind: INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER or
	// UNSPECIFIED.
	Kind string `json:"kind"`
	// Count is the number of spans, long-lived ones included.
	Count int64 `json:"count"`
	// Errors counts spans with status ERROR.
	Errors int64 `json:"errors"`
	// LongLived counts long-lived spans; they are excluded from Ms, MsTotal,
	// SelfMsTotal and CriticalPathMsTotal.
	LongLived int64 `json:"long_lived"`
	// Ms is the distribution of durations of the other spans.
	Ms Percentiles `json:"ms"`
	// MsTotal is the sum of those durations.
	MsTotal float64 `json:"ms_total"`
	// SelfMsTotal is the sum of their self times.
	SelfMsTotal float64 `json:"self_ms_total"`
	// CriticalPathMsTotal is the time these spans hold on critical paths.
	CriticalPathMsTotal float64 `json:"critical_path_ms_total"`
}

// RootOperation aggregates the traces whose root span has one operation.
type RootOperation struct {
	// Service is the root span's service.
	Service string `json:"service"`
	// Name is the root span's name.
	Name string `json:"name"`
	// Traces is the number of (non-long-lived) traces with this root.
	Traces int64 `json:"traces"`
	// Ms is the distribution of those traces' root durations.
	Ms Percentiles `json:"ms"`
	// MsTotal is the sum of the root durations.
	MsTotal float64 `json:"ms_total"`
	// CriticalPath shares the critical-path time of these traces among
	// (service, operation), largest first, at most 10.
	CriticalPath []CriticalShare `json:"critical_path"`
}

// CriticalShare is the critical-path time one operation holds.
type CriticalShare struct {
	// Service is the operation's service.
	Service string `json:"service"`
	// Name is the operation's span name.
	Name string `json:"name"`
	// MsTotal is the critical-path time summed over the traces.
	MsTotal float64 `json:"ms_total"`
	// Share is MsTotal divided by the traces' total critical-path time (0..1).
	Share float64 `json:"share"`
}

// SlowPath is a chain of operations from a trace's root down to the span
// that holds the most critical-path time in that trace (its bottleneck).
type SlowPath struct {
	// Path lists "service: operation" from the root to the bottleneck;
	// consecutive identical entries are collapsed into one.
	Path []string `json:"path"`
	// Traces is the number of traces whose bottleneck chain is Path.
	Traces int64 `json:"traces"`
	// Ms is the distribution of those traces' durations.
	Ms Percentiles `json:"ms"`
	// MsTotal is the sum of those traces' durations (the ranking key).
	MsTotal float64 `json:"ms_total"`
	// BottleneckMsTotal is the critical-path time held by the bottleneck
	// spans (the last entry of Path) in these traces.
	BottleneckMsTotal float64 `json:"bottleneck_ms_total"`
	// ExemplarTraceIDs are the slowest of these traces, at most 3.
	ExemplarTraceIDs []string `json:"exemplar_trace_ids"`
}

// Trace is one trace with its span tree, for a waterfall.
type Trace struct {
	// TraceID is the trace id, 32 lower-case hex digits.
	TraceID string `json:"trace_id"`
	// RootService is the service of the trace's root span (the longest
	// root when a missing parent left several).
	RootService string `json:"root_service"`
	// RootOperation is the root span's name.
	RootOperation string `json:"root_operation"`
	// EntryOperation is the operation the trace is grouped under in
	// root_operations: RootOperation, or the name of the SERVER span right
	// under an INTERNAL root of the same service (for kube-apiserver
	// requests, whose root is the "authentication" filter span, the
	// request's route such as "PATCH /api/v1/namespaces/{:namespace}/configmaps/{:name}").
	EntryOperation string `json:"entry_operation"`
	// Start is the earliest span start, RFC 3339 with nanoseconds, UTC.
	Start string `json:"start"`
	// DurationMs is the root span's duration.
	DurationMs float64 `json:"duration_ms"`
	// SpanCount is the number of spans in the trace (Spans may hold fewer).
	SpanCount int `json:"span_count"`
	// Services are the services in the trace, sorted.
	Services []string `json:"services"`
	// Errors counts spans with status ERROR.
	Errors int `json:"errors"`
	// Roots counts the root spans of the trace (more than 1 when a parent
	// is missing).
	Roots int `json:"roots"`
	// Bottleneck is "service: operation" of the span with the most
	// critical-path time.
	Bottleneck string `json:"bottleneck"`
	// Spans is the span tree in depth-first order (children by start time),
	// at most Options.MaxTraceSpans.
	Spans []TraceSpan `json:"spans"`
	// SpansOmitted counts spans left out of Spans.
	SpansOmitted int `json:"spans_omitted,omitempty"`
}

// TraceSpan is one span of a Trace.
type TraceSpan struct {
	// SpanID is the span id, 16 lower-case hex digits.
	SpanID string `json:"span_id"`
	// Parent is the index in Trace.Spans of the parent, -1 for a root.
	Parent int `json:"parent"`
	// Depth is the depth in the tree (0 for roots).
	Depth int `json:"depth"`
	// StartMs is the span start as an offset from Trace.Start, after clock
	// skew adjustment.
	StartMs float64 `json:"start_ms"`
	// DurationMs is the span duration.
	DurationMs float64 `json:"duration_ms"`
	// SelfMs is the span's self time.
	SelfMs float64 `json:"self_ms"`
	// Service is the span's service.
	Service string `json:"service"`
	// Name is the span name.
	Name string `json:"name"`
	// Kind is the span kind (see Operation.Kind).
	Kind string `json:"kind"`
	// Status is UNSET, OK or ERROR.
	Status string `json:"status"`
	// StatusMessage is the status message, at most 200 bytes.
	StatusMessage string `json:"status_message,omitempty"`
	// Critical is true when part of the span is on the critical path.
	Critical bool `json:"critical"`
	// CriticalMs is the span's time on the critical path.
	CriticalMs float64 `json:"critical_ms"`
	// LongLived is true for a long-lived span.
	LongLived bool `json:"long_lived,omitempty"`
	// Orphan is true when the span has a parent id that is not in the
	// capture.
	Orphan bool `json:"orphan,omitempty"`
	// SkewMs is the clock adjustment applied to this span's host.
	SkewMs float64 `json:"skew_ms,omitempty"`
	// Links is the number of span links.
	Links int `json:"links,omitempty"`
	// Attributes is a bounded set of the span's attributes (the ones the
	// analysis reads: HTTP method/target/status, RPC method/status, verb,
	// resource, key, pod, ...), values at most 200 bytes. Untrusted text.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// LongLivedTrace is a trace whose root is long-lived.
type LongLivedTrace struct {
	// TraceID is the trace id.
	TraceID string `json:"trace_id"`
	// RootService is the root span's service.
	RootService string `json:"root_service"`
	// RootOperation is the root span's name.
	RootOperation string `json:"root_operation"`
	// EntryOperation is as in Trace: the request's route for a
	// kube-apiserver watch.
	EntryOperation string `json:"entry_operation"`
	// DurationMs is the root span's duration.
	DurationMs float64 `json:"duration_ms"`
	// Reason says why it is long-lived: "watch" (a Kubernetes or etcd
	// watch), "stream" (another long-lived RPC stream).
	Reason string `json:"reason"`
	// Detail is the span (name or http.target) that made it long-lived.
	Detail string `json:"detail"`
}

// ErrorGroup groups error spans of one operation.
type ErrorGroup struct {
	// Service is the spans' service.
	Service string `json:"service"`
	// Name is the span name.
	Name string `json:"name"`
	// Kind is the span kind.
	Kind string `json:"kind"`
	// Count is the number of ERROR spans.
	Count int64 `json:"count"`
	// Messages are the most frequent status messages (or HTTP/RPC status
	// codes when the message is empty), at most 5, by count descending.
	Messages []MessageCount `json:"messages"`
	// ExemplarTraceIDs are up to 3 trace ids (first seen).
	ExemplarTraceIDs []string `json:"exemplar_trace_ids"`
}

// MessageCount is a message with how often it occurred.
type MessageCount struct {
	// Message is the text (at most 200 bytes; untrusted).
	Message string `json:"message"`
	// Count is how often it occurred.
	Count int64 `json:"count"`
}

// ClockSkew is the clock offset estimated for one host.
type ClockSkew struct {
	// Host is the clock domain: host.name, else service.instance.id, else
	// service.name of the resource.
	Host string `json:"host"`
	// Services are the services seen on Host, sorted.
	Services []string `json:"services"`
	// Reference is the host this offset is relative to ("" for a reference
	// host).
	Reference string `json:"reference"`
	// Pairs is the number of CLIENT→SERVER span pairs between Reference
	// and Host (either direction) the estimate used.
	Pairs int64 `json:"pairs"`
	// Violations counts pairs where the server span did not lie inside its
	// client parent before adjustment.
	Violations int64 `json:"violations"`
	// EstimatedMs is the estimated offset to add to Host's timestamps
	// (relative to the reference clock).
	EstimatedMs float64 `json:"estimated_ms"`
	// AppliedMs is the offset actually added (EstimatedMs clamped to
	// ±Options.SkewCap).
	AppliedMs float64 `json:"applied_ms"`
	// Capped is true when EstimatedMs exceeded the cap.
	Capped bool `json:"capped"`
}

// Kubernetes groups spans by the semantics of the Kubernetes components.
type Kubernetes struct {
	// APIServer groups kube-apiserver requests by verb and resource (from
	// the REST handler span's "verb"/"resource" attributes); latency is the
	// request's SERVER span (else the handler span). Sorted by ms.p99
	// descending, then verb, resource.
	APIServer []APIRequestGroup `json:"apiserver"`
	// Etcd groups etcd calls by RPC method and key prefix (the resource
	// type: first segment of the "key" attribute of the apiserver storage
	// span above the call). Sorted like APIServer.
	Etcd []EtcdGroup `json:"etcd"`
	// CRI groups kubelet → container runtime calls by CRI method.
	CRI []CRIGroup `json:"cri"`
	// Pods groups kubelet pod work (syncPod and friends) by pod.
	Pods []PodGroup `json:"pods"`
}

// APIRequestGroup is one (verb, resource) of kube-apiserver requests.
type APIRequestGroup struct {
	// Verb is the request verb (GET, LIST, WATCH, POST, PUT, PATCH, APPLY,
	// DELETE, ...).
	Verb string `json:"verb"`
	// Resource is the resource (with "/subresource" when there is one).
	Resource string `json:"resource"`
	// Count is the number of requests.
	Count int64 `json:"count"`
	// Errors counts requests whose SERVER or handler span has status ERROR.
	Errors int64 `json:"errors"`
	// LongLived counts long-lived requests (watches), excluded from Ms.
	LongLived int64 `json:"long_lived"`
	// Ms is the request latency distribution.
	Ms Percentiles `json:"ms"`
	// EtcdMsTotal is the summed duration of the etcd client calls under
	// these requests.
	EtcdMsTotal float64 `json:"etcd_ms_total"`
	// EtcdCalls is the number of etcd client calls under these requests.
	EtcdCalls int64 `json:"etcd_calls"`
}

// EtcdGroup is one (method, key prefix) of etcd calls.
type EtcdGroup struct {
	// Method is the RPC method, e.g. "KV/Range" (service package stripped).
	Method string `json:"method"`
	// KeyPrefix is "/<resource>" from the storage key, "" when unknown.
	KeyPrefix string `json:"key_prefix"`
	// Calls is the number of calls: client spans, plus server spans whose
	// client span is not in the capture.
	Calls int64 `json:"calls"`
	// Errors counts calls where either span has status ERROR.
	Errors int64 `json:"errors"`
	// LongLived counts long-lived calls (watches, keep-alive streams); they
	// are excluded from ClientMs and ServerMs.
	LongLived int64 `json:"long_lived"`
	// ClientCalls counts calls with a client span (apiserver side).
	ClientCalls int64 `json:"client_calls"`
	// ClientMs is the distribution of the client span durations.
	ClientMs Percentiles `json:"client_ms"`
	// ServerMs is the distribution of etcd server span durations (calls with
	// a server span only).
	ServerMs Percentiles `json:"server_ms"`
	// ServerCalls counts calls with an etcd server span.
	ServerCalls int64 `json:"server_calls"`
}

// CRIGroup is one CRI method called by the kubelet.
type CRIGroup struct {
	// Method is the CRI method, e.g. "RuntimeService/RunPodSandbox".
	Method string `json:"method"`
	// Runtime is the service of the server spans ("containerd", "crio"), ""
	// when the runtime sent none.
	Runtime string `json:"runtime"`
	// Calls is the number of kubelet client calls.
	Calls int64 `json:"calls"`
	// Errors counts calls where either span has status ERROR.
	Errors int64 `json:"errors"`
	// ClientMs is the kubelet client span durations.
	ClientMs Percentiles `json:"client_ms"`
	// ServerMs is the runtime server span durations (calls with one only).
	ServerMs Percentiles `json:"server_ms"`
	// ServerCalls counts calls with a runtime server span.
	ServerCalls int64 `json:"server_calls"`
}

// PodGroup is the kubelet's traced work on one pod.
type PodGroup struct {
	// Namespace is k8s.namespace.name.
	Namespace string `json:"namespace"`
	// Pod is k8s.pod.name.
	Pod string `json:"pod"`
	// Syncs counts the kubelet's pod-level spans (syncPod,
	// syncTerminatingPod, ...).
	Syncs int64 `json:"syncs"`
	// Errors counts those with status ERROR.
	Errors int64 `json:"errors"`
	// Ms is the distribution of their durations.
	Ms Percentiles `json:"ms"`
	// CRICalls counts CRI client calls under them.
	CRICalls int64 `json:"cri_calls"`
	// CRIMsTotal sums those calls' durations.
	CRIMsTotal float64 `json:"cri_ms_total"`
}

// Warning is one capture- or data-quality finding.
type Warning struct {
	// Code is a stable identifier (see the Warn* constants).
	Code string `json:"code"`
	// Severity is "warning" or "info".
	Severity string `json:"severity"`
	// Message explains the finding in one or two sentences.
	Message string `json:"message"`
	// Count is the number of spans, traces or records concerned, when that
	// makes sense.
	Count int64 `json:"count,omitempty"`
}

// Warning codes.
const (
	WarnBadRecords         = "bad_records"          // records that could not be decoded
	WarnInputError         = "input_error"          // the record source failed part-way (truncated archive, ...)
	WarnDuplicateSpans     = "duplicate_spans"      // identical (trace, span id) seen more than once
	WarnConflictingSpans   = "conflicting_spans"    // same (trace, span id) with different content
	WarnOrphanSpans        = "orphan_spans"         // parent id not in the capture
	WarnInvalidSpans       = "invalid_spans"        // missing ids, parent cycles
	WarnInvalidTimes       = "invalid_times"        // no start time, or end before start
	WarnBrokenPropagation  = "broken_propagation"   // client span with no server child although the server's service sent spans
	WarnSourceSilent       = "source_silent"        // a source sent nothing
	WarnDroppedSpans       = "dropped_spans"        // the manifest reports drops
	WarnClockSkew          = "clock_skew"           // an offset was applied
	WarnClockSkewCapped    = "clock_skew_capped"    // an offset exceeded the cap
	WarnLongLived          = "long_lived"           // watches/streams kept out of the latency rankings
	WarnUntrustedLinks     = "untrusted_client"     // spans with links instead of parents
	WarnOverflowingSpans   = "overflowing_children" // children outside their parent's interval
	WarnTruncatedTables    = "truncated"            // a table hit its size cap
	WarnNoSpans            = "no_spans"             // nothing to analyze
	WarnUnknownServiceName = "unknown_service"      // spans without service.name
	WarnLoneAuthentication = "lone_authentication"  // one-span kube-apiserver "authentication" traces
)

// BaselineDiff compares this capture with a baseline capture.
type BaselineDiff struct {
	// Label names the baseline (e.g. its file name), from Options.BaselineLabel.
	Label string `json:"label"`
	// Spans is the baseline's span count.
	Spans int64 `json:"spans"`
	// Traces is the baseline's trace count.
	Traces int64 `json:"traces"`
	// Edges compares edges by (client, server) on client and server
	// latency. Sorted by client p99 change descending (slower first), then
	// names; rows only in one capture last.
	Edges []EdgeChange `json:"edges"`
	// Operations compares operations by (service, kind, name). Sorted like
	// Edges, on ms.
	Operations []OperationChange `json:"operations"`
	// Paths compares slow paths by path. Sorted like Edges, on ms.
	Paths []PathChange `json:"paths"`
}

// Change compares one distribution between the baseline and this capture.
type Change struct {
	// BaseCount is the count in the baseline (0 when absent there).
	BaseCount int64 `json:"base_count"`
	// Count is the count in this capture (0 when absent here).
	Count int64 `json:"count"`
	// BaseMs is the baseline distribution (zero when absent).
	BaseMs Percentiles `json:"base_ms"`
	// Ms is this capture's distribution (zero when absent).
	Ms Percentiles `json:"ms"`
	// DeltaP50Ms is Ms.P50 − BaseMs.P50.
	DeltaP50Ms float64 `json:"delta_p50_ms"`
	// DeltaP90Ms is Ms.P90 − BaseMs.P90.
	DeltaP90Ms float64 `json:"delta_p90_ms"`
	// DeltaP99Ms is Ms.P99 − BaseMs.P99.
	DeltaP99Ms float64 `json:"delta_p99_ms"`
	// RatioP50 is Ms.P50 / BaseMs.P50 (0 when either side is absent or 0).
	RatioP50 float64 `json:"ratio_p50"`
	// Status is "both", "new" (only in this capture) or "gone" (only in the
	// baseline).
	Status string `json:"status"`
}

// EdgeChange compares one edge.
type EdgeChange struct {
	// ClientService is the edge's client service.
	ClientService string `json:"client_service"`
	// ServerService is the edge's server service.
	ServerService string `json:"server_service"`
	// Client compares client-side latency (and calls).
	Client Change `json:"client"`
	// Server compares server-side latency.
	Server Change `json:"server"`
}

// OperationChange compares one operation.
type OperationChange struct {
	// Service is the operation's service.
	Service string `json:"service"`
	// Name is the span name.
	Name string `json:"name"`
	// Kind is the span kind.
	Kind string `json:"kind"`
	// Change compares the durations; its counts exclude long-lived spans,
	// like the distributions.
	Change
}

// PathChange compares one slow path.
type PathChange struct {
	// Path is the chain of "service: operation".
	Path []string `json:"path"`
	// Change compares the trace durations.
	Change
}
