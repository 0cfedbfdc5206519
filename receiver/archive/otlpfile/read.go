package otlpfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trace-capture/trace-capture/receiver/archive"
)

// Format names a detected input format.
type Format string

// The formats Read understands.
const (
	FormatJSON        Format = "otlp-json"        // JSON lines, one document, or an array
	FormatProto       Format = "otlp-proto"       // 4-byte big-endian length + protobuf, repeated
	FormatProtoZstd   Format = "otlp-proto+zstd"  // 4-byte length + zstd frame of protobuf, repeated
	FormatJSONFramed  Format = "otlp-json-framed" // 4-byte length + zstd frame of OTLP JSON, repeated
	FormatSpanArchive Format = "trace-capture-spans"
)

// ErrUnknownFormat reports input that is none of the formats Read knows.
var ErrUnknownFormat = errors.New("unrecognised trace file: expected OTLP JSON (lines), OTLP protobuf frames as the Collector file exporter writes them, or a trace-capture span archive")

// Options bound what Read accepts. Zero fields take defaults.
type Options struct {
	// MaxRecordSize bounds one request (default archive.DefaultMaxRecordSize).
	MaxRecordSize int
	// MaxDecodedBytes bounds the total decompressed input (default 64 GiB).
	MaxDecodedBytes int64
}

func (o Options) withDefaults() Options {
	if o.MaxRecordSize <= 0 {
		o.MaxRecordSize = archive.DefaultMaxRecordSize
	}
	if o.MaxDecodedBytes <= 0 {
		o.MaxDecodedBytes = 64 << 30
	}
	return o
}

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// Read detects the format of r and calls fn with each request, as
// protobuf. It returns the detected format. Every record is checked by
// decoding it, so the records fn receives are valid OTLP.
func Read(r io.Reader, opts Options, fn func(rec []byte) error) (Format, error) {
	opts = opts.withDefaults()
	br := bufio.NewReaderSize(&limitedReader{r: r, left: opts.MaxDecodedBytes}, 256<<10)
	head, _ := br.Peek(16)
	switch {
	case len(head) == 0:
		return "", fmt.Errorf("%w (the file is empty)", ErrUnknownFormat)
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", fmt.Errorf("read gzip: %w", err)
		}
		defer zr.Close()
		return Read(zr, opts, fn)
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return "", fmt.Errorf("read zstd: %w", err)
		}
		defer zr.Close()
		return Read(zr, opts, fn)
	case bytes.HasPrefix(head, []byte(archive.Magic)):
		return FormatSpanArchive, archive.ForEach(br, archive.ReaderOptions{MaxRecordSize: opts.MaxRecordSize, MaxDecodedBytes: opts.MaxDecodedBytes}, func(rec []byte) error {
			if err := checkProto(rec); err != nil {
				return err
			}
			return fn(rec)
		})
	}
	if first := firstNonSpace(head); first == '{' || first == '[' {
		return FormatJSON, readJSON(br, opts, fn)
	}
	return readFramed(br, opts, fn)
}

// ReadFile is Read on the file at path.
func ReadFile(path string, opts Options, fn func(rec []byte) error) (Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open trace file: %w", err)
	}
	defer f.Close()
	format, err := Read(f, opts, fn)
	if err != nil {
		return format, fmt.Errorf("read %s: %w", path, err)
	}
	return format, nil
}

func firstNonSpace(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// readJSON reads a stream of JSON values: each an OTLP request object, or
// an array of them.
func readJSON(r io.Reader, opts Options, fn func(rec []byte) error) error {
	dec := json.NewDecoder(r)
	var n int
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			if n == 0 {
				return fmt.Errorf("%w (no JSON document)", ErrUnknownFormat)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read OTLP JSON document %d: %w", n+1, err)
		}
		n++
		if len(raw) > opts.MaxRecordSize {
			return fmt.Errorf("OTLP JSON document %d has %d bytes (limit %d): %w", n, len(raw), opts.MaxRecordSize, archive.ErrRecordTooLarge)
		}
		docs := []json.RawMessage{raw}
		if firstNonSpace(raw) == '[' {
			docs = nil
			if err := json.Unmarshal(raw, &docs); err != nil {
				return fmt.Errorf("read OTLP JSON array %d: %w", n, err)
			}
		}
		for _, doc := range docs {
			rec, err := jsonToProto(doc)
			if err != nil {
				return fmt.Errorf("OTLP JSON document %d: %w", n, err)
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
	}
}

func jsonToProto(doc []byte) ([]byte, error) {
	if firstNonSpace(doc) != '{' {
		return nil, errors.New("not an OTLP ExportTraceServiceRequest object")
	}
	if !bytes.Contains(doc, []byte(`"resourceSpans"`)) && !bytes.Contains(doc, []byte(`"resource_spans"`)) && len(bytes.TrimSpace(doc)) > 2 {
		return nil, errors.New("no resourceSpans: not OTLP trace JSON")
	}
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(doc)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
}

func checkProto(rec []byte) error {
	if _, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec); err != nil {
		return fmt.Errorf("not an OTLP ExportTraceServiceRequest: %w", err)
	}
	return nil
}

// readFramed reads 4-byte big-endian length-prefixed records whose payload
// is protobuf, or a zstd frame of protobuf or OTLP JSON.
func readFramed(r io.Reader, opts Options, fn func(rec []byte) error) (format Format, err error) {
	var dec *zstd.Decoder
	defer func() {
		if dec != nil {
			dec.Close()
		}
	}()
	var lb [4]byte
	var buf, out []byte
	for n := 0; ; n++ {
		if _, err := io.ReadFull(r, lb[:]); err != nil {
			if err == io.EOF && n > 0 {
				return format, nil
			}
			if n == 0 {
				return format, ErrUnknownFormat
			}
			return format, fmt.Errorf("read record %d length: cut short: %w", n+1, archive.ErrTruncated)
		}
		size := binary.BigEndian.Uint32(lb[:])
		if int64(size) > int64(opts.MaxRecordSize) {
			if n == 0 {
				return format, ErrUnknownFormat
			}
			return format, fmt.Errorf("record %d declares %d bytes (limit %d): %w", n+1, size, opts.MaxRecordSize, archive.ErrRecordTooLarge)
		}
		if cap(buf) < int(size) {
			buf = make([]byte, size)
		}
		payload := buf[:size]
		if _, err := io.ReadFull(r, payload); err != nil {
			if n == 0 {
				return format, ErrUnknownFormat
			}
			return format, fmt.Errorf("read record %d: cut short: %w", n+1, archive.ErrTruncated)
		}
		compressed := bytes.HasPrefix(payload, zstdMagic)
		if compressed {
			if dec == nil {
				if dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(opts.MaxRecordSize))); err != nil {
					return format, fmt.Errorf("create zstd decoder: %w", err)
				}
			}
			if out, err = dec.DecodeAll(payload, out[:0]); err != nil {
				return format, fmt.Errorf("decompress record %d: %w", n+1, err)
			}
			payload = out
		}
		rec := payload
		isJSON := firstNonSpace(payload) == '{'
		if n == 0 {
			switch {
			case isJSON:
				format = FormatJSONFramed
			case compressed:
				format = FormatProtoZstd
			default:
				format = FormatProto
			}
		}
		if isJSON {
			if rec, err = jsonToProto(payload); err != nil {
				if n == 0 {
					return format, ErrUnknownFormat
				}
				return format, fmt.Errorf("record %d: %w", n+1, err)
			}
		} else if err := checkProto(payload); err != nil {
			if n == 0 {
				return format, ErrUnknownFormat
			}
			return format, fmt.Errorf("record %d: %w", n+1, err)
		}
		if err := fn(rec); err != nil {
			return format, err
		}
	}
}

type limitedReader struct {
	r    io.Reader
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errors.New("input decompresses to more than the configured limit")
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
