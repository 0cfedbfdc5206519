package otlpfile

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Writer writes requests in one of the file exporter's formats.
type Writer struct {
	bw     *bufio.Writer
	format Format
	json   ptrace.JSONMarshaler
	unm    ptrace.ProtoUnmarshaler
}

// NewWriter returns a Writer of format FormatJSON (JSON lines) or
// FormatProto (length-prefixed protobuf) to w. Call Flush at the end.
func NewWriter(w io.Writer, format Format) (*Writer, error) {
	switch format {
	case FormatJSON, FormatProto:
	default:
		return nil, fmt.Errorf("unsupported output format %q (want %s or %s)", format, FormatJSON, FormatProto)
	}
	return &Writer{bw: bufio.NewWriterSize(w, 256<<10), format: format}, nil
}

// Write writes one request given as protobuf. Protobuf output carries the
// bytes unchanged; JSON output is the OTLP JSON encoding of the same
// content, one document a line.
func (w *Writer) Write(rec []byte) error {
	if w.format == FormatProto {
		var lb [4]byte
		binary.BigEndian.PutUint32(lb[:], uint32(len(rec)))
		if _, err := w.bw.Write(lb[:]); err != nil {
			return fmt.Errorf("write record: %w", err)
		}
		if _, err := w.bw.Write(rec); err != nil {
			return fmt.Errorf("write record: %w", err)
		}
		return nil
	}
	td, err := w.unm.UnmarshalTraces(rec)
	if err != nil {
		return fmt.Errorf("decode record: %w", err)
	}
	b, err := w.json.MarshalTraces(td)
	if err != nil {
		return fmt.Errorf("encode OTLP JSON: %w", err)
	}
	if _, err := w.bw.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write record: %w", err)
	}
	return nil
}

// Flush writes out what is buffered.
func (w *Writer) Flush() error {
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("flush output: %w", err)
	}
	return nil
}
