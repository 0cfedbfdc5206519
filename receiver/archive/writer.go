package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// DefaultFlushInterval is how often a Writer makes what it holds readable
// by a reader of the file, at the most.
const DefaultFlushInterval = time.Second

// WriterOptions configures a Writer. The zero value is usable.
type WriterOptions struct {
	// FlushInterval bounds how long an appended record may stay in the
	// encoder before it reaches the underlying writer. Zero means
	// DefaultFlushInterval; a negative value disables the timer (the caller
	// then calls Flush).
	FlushInterval time.Duration

	// MaxRecordSize rejects larger records with ErrRecordTooLarge. Zero
	// means DefaultMaxRecordSize.
	MaxRecordSize int

	// Level is the zstd level. Zero means zstd.SpeedFastest, which on OTLP
	// batches compresses within a few percent of the default level at
	// about two thirds of its CPU.
	Level zstd.EncoderLevel
}

// Stats counts what a Writer has taken and written.
type Stats struct {
	// Records is the number of records appended.
	Records int64
	// RawBytes is the sum of the appended records' sizes.
	RawBytes int64
	// WrittenBytes counts the bytes handed to the underlying writer,
	// header included: the archive's size on disk once flushed.
	WrittenBytes int64
	// PendingBytes is the raw size of records (with their length prefix)
	// not yet flushed: an upper bound of what WrittenBytes will still grow
	// by, give or take a few bytes of framing.
	PendingBytes int64
}

// Writer appends records to a span archive. It is safe for concurrent use.
// Errors are sticky: after a failed write every later call returns the same
// error.
type Writer struct {
	mu      sync.Mutex
	out     *countingWriter
	enc     *zstd.Encoder
	closer  io.Closer // the file, when the Writer owns it
	syncer  interface{ Sync() error }
	maxSize int
	stats   Stats
	err     error
	closed  bool
	lenBuf  [4]byte

	stop chan struct{}
	done chan struct{}
}

// NewWriter writes the archive header to w and returns a Writer that
// appends records to it. Close finishes the archive but does not close w.
func NewWriter(w io.Writer, opts WriterOptions) (*Writer, error) {
	out := &countingWriter{w: w}
	if _, err := out.Write(header()); err != nil {
		return nil, fmt.Errorf("write span archive header: %w", err)
	}
	level := opts.Level
	if level == 0 {
		level = zstd.SpeedFastest
	}
	enc, err := zstd.NewWriter(out,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true),
	)
	if err != nil {
		return nil, fmt.Errorf("create zstd encoder: %w", err)
	}
	wr := &Writer{out: out, enc: enc, maxSize: opts.MaxRecordSize}
	if wr.maxSize <= 0 {
		wr.maxSize = DefaultMaxRecordSize
	}
	wr.stats.WrittenBytes = out.n
	interval := opts.FlushInterval
	if interval == 0 {
		interval = DefaultFlushInterval
	}
	if interval > 0 {
		wr.stop, wr.done = make(chan struct{}), make(chan struct{})
		go wr.flushLoop(interval)
	}
	return wr, nil
}

// Create creates (or truncates) the file at path and returns a Writer that
// owns it: Close also syncs and closes the file.
func Create(path string, opts WriterOptions) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create span archive: %w", err)
	}
	w, err := NewWriter(f, opts)
	if err != nil {
		return nil, errors.Join(err, f.Close(), os.Remove(path))
	}
	w.closer, w.syncer = f, f
	return w, nil
}

// Append adds one record: the protobuf bytes of an OTLP
// ExportTraceServiceRequest. Empty records are ignored (a zero length is the
// end marker). The Writer does not retain rec.
func (w *Writer) Append(rec []byte) error {
	if len(rec) == 0 {
		return nil
	}
	if len(rec) > w.maxSize {
		return fmt.Errorf("append record of %d bytes (limit %d): %w", len(rec), w.maxSize, ErrRecordTooLarge)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	binary.BigEndian.PutUint32(w.lenBuf[:], uint32(len(rec)))
	if _, err := w.enc.Write(w.lenBuf[:]); err != nil {
		return w.fail(fmt.Errorf("append record: %w", err))
	}
	if _, err := w.enc.Write(rec); err != nil {
		return w.fail(fmt.Errorf("append record: %w", err))
	}
	w.stats.Records++
	w.stats.RawBytes += int64(len(rec))
	w.stats.PendingBytes += int64(len(rec)) + 4
	w.stats.WrittenBytes = w.out.n
	return nil
}

// Flush hands everything appended so far to the underlying writer as a
// complete zstd block, so that a reader of the file sees it even if this
// process dies right after.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	return w.flushLocked()
}

func (w *Writer) flushLocked() error {
	if w.stats.PendingBytes == 0 {
		return nil
	}
	if err := w.enc.Flush(); err != nil {
		return w.fail(fmt.Errorf("flush span archive: %w", err))
	}
	w.stats.PendingBytes = 0
	w.stats.WrittenBytes = w.out.n
	return nil
}

// Stats returns the current counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stats.WrittenBytes = w.out.n
	return w.stats
}

// Close writes the end marker, finishes the zstd stream and, for a Writer
// made by Create, syncs and closes the file. It returns the first error the
// Writer met, joined with any error of closing. Calling Close twice returns
// ErrClosed.
func (w *Writer) Close() error {
	if w.stop != nil {
		close(w.stop)
		<-w.done
		w.stop = nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	err := w.err
	if err == nil {
		var end [4]byte
		if _, werr := w.enc.Write(end[:]); werr != nil {
			err = fmt.Errorf("write end marker: %w", werr)
		}
	}
	if cerr := w.enc.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("finish zstd stream: %w", cerr)
	}
	w.stats.PendingBytes = 0
	w.stats.WrittenBytes = w.out.n
	if w.syncer != nil {
		if serr := w.syncer.Sync(); serr != nil {
			err = errors.Join(err, fmt.Errorf("sync span archive: %w", serr))
		}
	}
	if w.closer != nil {
		if cerr := w.closer.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close span archive: %w", cerr))
		}
	}
	return err
}

func (w *Writer) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	return nil
}

func (w *Writer) fail(err error) error {
	w.err = err
	return err
}

func (w *Writer) flushLoop(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.mu.Lock()
			if w.usable() == nil {
				_ = w.flushLocked() // a failure is sticky and surfaces at the next call
			}
			w.mu.Unlock()
		}
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
