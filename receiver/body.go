package receiver

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// request is the scratch space of one request, pooled: the body and the
// scanner's intern table. (The resources Scan finds are not pooled: they go
// to the Sink, which may keep them.)
type request struct {
	buf []byte
	sc  scanner
}

// maxPooledBuffer keeps rare huge bodies from pinning memory in the pool.
const maxPooledBuffer = 8 << 20

var requestPool = sync.Pool{New: func() any { return new(request) }}

func getRequest() *request { return requestPool.Get().(*request) }

func putRequest(r *request) {
	if cap(r.buf) > maxPooledBuffer {
		r.buf = nil
	}
	r.buf = r.buf[:0]
	requestPool.Put(r)
}

// errTooLarge reports a body above the limit, while it is being read.
var errTooLarge = errors.New("request too large")

// readLimited reads all of src into buf[:0], growing it to at most limit+1
// bytes; sizeHint (if positive) is the expected size. A body longer than
// limit gives errTooLarge.
func readLimited(src io.Reader, buf []byte, sizeHint int64, limit int) ([]byte, error) {
	want := 64 << 10
	if sizeHint > 0 {
		want = int(min(sizeHint, int64(limit))) + 1 // +1 to see the end without growing
	}
	if cap(buf) < want {
		buf = make([]byte, 0, want)
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(max(2*cap(buf), 64<<10), limit+1))
			copy(nb, buf)
			buf = nb
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf[:0], errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// sourceReader remembers the errors of the underlying body, so that a failed
// decompression can be told from a failed read.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// decompressor turns the compressed body into a reader of the decompressed
// bytes; release returns pooled state.
type decompressor interface {
	open(src io.Reader) (io.Reader, error)
	release(io.Reader)
}

type gzipDecompressor struct{ pool sync.Pool }

func (d *gzipDecompressor) open(src io.Reader) (io.Reader, error) {
	if zr, ok := d.pool.Get().(*gzip.Reader); ok {
		if err := zr.Reset(src); err != nil {
			d.pool.Put(zr)
			return nil, err
		}
		return zr, nil
	}
	return gzip.NewReader(src)
}

func (d *gzipDecompressor) release(r io.Reader) {
	if zr, ok := r.(*gzip.Reader); ok {
		d.pool.Put(zr)
	}
}

type zstdDecompressor struct {
	pool      sync.Pool
	maxWindow uint64
	maxMemory uint64
}

// zstdMaxWindow is the largest zstd window accepted: the 8 MiB the zstd
// format asks every decoder to support, and what streaming encoders declare
// by default. The decompressed size is bounded separately.
const zstdMaxWindow = 8 << 20

func newZstdDecompressor(maxBytes int) *zstdDecompressor {
	return &zstdDecompressor{maxWindow: zstdMaxWindow, maxMemory: uint64(max(maxBytes+1, zstdMaxWindow))}
}

func (d *zstdDecompressor) open(src io.Reader) (io.Reader, error) {
	if zr, ok := d.pool.Get().(*zstd.Decoder); ok {
		if err := zr.Reset(src); err != nil {
			d.pool.Put(zr)
			return nil, err
		}
		return zr, nil
	}
	zr, err := zstd.NewReader(src,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(d.maxWindow),
		zstd.WithDecoderMaxMemory(d.maxMemory),
	)
	if err != nil {
		return nil, fmt.Errorf("create zstd decoder: %w", err)
	}
	return zr, nil
}

func (d *zstdDecompressor) release(r io.Reader) {
	if zr, ok := r.(*zstd.Decoder); ok {
		// Drop the reference to the body; keep the decoder's buffers.
		if zr.Reset(nil) == nil {
			d.pool.Put(zr)
		}
	}
}
