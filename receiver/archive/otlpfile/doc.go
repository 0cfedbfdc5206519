// Package otlpfile reads and writes the trace files other tools make, so
// that what they captured can be bundled and analysed, and what we captured
// can be read by them.
//
// Read detects, from the first bytes, the OpenTelemetry Collector file
// exporter's formats — OTLP JSON lines, and length-prefixed records of OTLP
// protobuf or OTLP JSON, each record optionally a zstd frame — as well as a
// single (pretty-printed) OTLP JSON document, a JSON array of them, a whole
// file compressed with gzip or zstd, and trace-capture's own span archives.
// Every record comes out as the protobuf bytes of an
// ExportTraceServiceRequest. Write produces the file exporter's JSON lines
// or its length-prefixed protobuf.
package otlpfile
