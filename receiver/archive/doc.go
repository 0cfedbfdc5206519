// Package archive reads and writes trace-capture span archives.
//
// A span archive is an append-only file: an 11-byte header (the magic
// "TCSPANS\x00", a format version and a compression id) followed by one zstd
// stream. Inside the stream each record is a 4-byte big-endian length and
// that many bytes of an OTLP ExportTraceServiceRequest in protobuf, exactly as
// a component sent it. A record of length zero marks a clean end.
//
// The writer flushes the zstd stream at least once per FlushInterval, so a
// process killed with SIGKILL leaves a file whose every record written before
// the last flush can be read back. The reader returns every complete record
// and then reports a missing end marker or a cut record as ErrTruncated; it
// never trusts a length above its MaxRecordSize and never panics on
// arbitrary bytes.
//
// The package is a leaf: it knows nothing of the network, so analysis can
// read archives without linking the receiver.
package archive
