// Package receiver is trace-capture's embedded OTLP trace receiver: OTLP/gRPC
// (TraceService/Export) and OTLP/HTTP (POST /v1/traces, protobuf or JSON,
// gzip or zstd request encoding), answering as the OTLP specification says.
//
// The hot path does not decode spans. gRPC hands the raw request bytes to the
// handler through a pass-through codec; HTTP reads the (decompressed) body.
// Scan then walks the protobuf wire format once, without allocating, to check
// that the request is an ExportTraceServiceRequest that pdata would decode
// and to find each resource's service.name, host.name and span count. The
// validated bytes and that summary go to a Sink. JSON bodies, which are rare,
// are decoded with pdata and re-encoded as protobuf first.
//
// Recorder is the Sink that writes each request as one record of a span
// archive (package receiver/archive), refuses requests once a byte budget is
// spent (the start of a capture window is never evicted), and counts what it
// took, dropped and refused per source.
//
// The lifecycle is Config.Validate, New, Start, Addrs, Shutdown. The receiver
// logs its start and stop once and never per request: counters take that
// role.
package receiver
