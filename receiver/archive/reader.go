package archive

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

// ReaderOptions configures a Reader. The zero value is usable.
type ReaderOptions struct {
	// MaxRecordSize refuses longer records. Zero means DefaultMaxRecordSize.
	MaxRecordSize int
	// MaxDecodedBytes stops reading once this many decompressed bytes have
	// been produced (a guard against zstd bombs in untrusted archives).
	// Zero means no limit.
	MaxDecodedBytes int64
}

// Reader returns the records of a span archive in the order they were
// written.
type Reader struct {
	dec     *zstd.Decoder
	br      *bufio.Reader
	max     int
	maxDec  int64
	decoded int64
	buf     []byte
	records int64
	err     error // sticky
}

// NewReader checks the header of the archive in r and returns a Reader of
// its records. Call Close to release the decoder.
func NewReader(r io.Reader, opts ReaderOptions) (*Reader, error) {
	var h [headerSize]byte
	if n, err := io.ReadFull(r, h[:]); err != nil {
		if n < len(Magic) || string(h[:len(Magic)]) != Magic {
			return nil, ErrNotArchive
		}
		return nil, fmt.Errorf("read span archive header: %w", ErrTruncated)
	}
	if string(h[:len(Magic)]) != Magic {
		return nil, ErrNotArchive
	}
	version, compression := h[len(Magic)], h[len(Magic)+1]
	if version < 1 || version > Version || compression != compressionZstd {
		return nil, &UnsupportedVersionError{Version: version, Compression: compression}
	}
	max := opts.MaxRecordSize
	if max <= 0 {
		max = DefaultMaxRecordSize
	}
	dec, err := zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(64<<20),
		zstd.WithDecoderMaxMemory(uint64(max)*4+(256<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("create zstd decoder: %w", err)
	}
	return &Reader{dec: dec, br: bufio.NewReaderSize(dec, 64<<10), max: max, maxDec: opts.MaxDecodedBytes}, nil
}

// Next returns the next record. The slice is valid until the next call. At a
// clean end it returns io.EOF; at the end of a file that was not closed
// cleanly (or was cut) it returns an error that matches ErrTruncated. Any
// other error means the data is corrupt from that point on; the records
// returned before it are intact.
func (r *Reader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	var lb [4]byte
	n, err := io.ReadFull(r.br, lb[:])
	if err != nil {
		return nil, r.fail(r.cause(err, n == 0, "record length"))
	}
	size := binary.BigEndian.Uint32(lb[:])
	if size == 0 {
		r.err = io.EOF
		return nil, io.EOF
	}
	if int64(size) > int64(r.max) {
		return nil, r.fail(fmt.Errorf("record %d declares %d bytes (limit %d): %w", r.records+1, size, r.max, ErrRecordTooLarge))
	}
	r.decoded += int64(size) + 4
	if r.maxDec > 0 && r.decoded > r.maxDec {
		return nil, r.fail(fmt.Errorf("span archive decompresses to more than %d bytes", r.maxDec))
	}
	if cap(r.buf) < int(size) {
		r.buf = make([]byte, size)
	}
	buf := r.buf[:size]
	if _, err := io.ReadFull(r.br, buf); err != nil {
		return nil, r.fail(r.cause(err, false, fmt.Sprintf("record %d (%d bytes)", r.records+1, size)))
	}
	r.records++
	return buf, nil
}

// Records returns how many records Next has returned.
func (r *Reader) Records() int64 { return r.records }

// Close releases the decoder.
func (r *Reader) Close() {
	r.dec.Close()
}

func (r *Reader) cause(err error, atBoundary bool, what string) error {
	switch {
	case errors.Is(err, io.EOF) && atBoundary:
		return fmt.Errorf("no end marker after record %d: %w", r.records, ErrTruncated)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("read %s: cut short after record %d: %w", what, r.records, ErrTruncated)
	default:
		return fmt.Errorf("read %s after record %d: %w", what, r.records, err)
	}
}

func (r *Reader) fail(err error) error {
	r.err = err
	return err
}

// ForEach calls fn with each record of the archive read from r. It stops at
// the first error of fn. A truncated archive yields all its complete records
// and then an error matching ErrTruncated.
func ForEach(r io.Reader, opts ReaderOptions, fn func(rec []byte) error) error {
	ar, err := NewReader(r, opts)
	if err != nil {
		return err
	}
	defer ar.Close()
	for {
		rec, err := ar.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

// ForEachFile is ForEach on the file at path.
func ForEachFile(path string, opts ReaderOptions, fn func(rec []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open span archive: %w", err)
	}
	defer f.Close()
	if err := ForEach(f, opts, fn); err != nil {
		return fmt.Errorf("read span archive %s: %w", path, err)
	}
	return nil
}
