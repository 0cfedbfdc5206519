package receiver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/trace-capture/trace-capture/receiver/archive"
)

// BudgetRetryAfter is the Retry-After a Recorder asks for once its budget is
// spent. The budget does not come back during a capture, so it is long: a
// sender that honours it wastes little on retries before it gives up.
const BudgetRetryAfter = 30 * time.Second

// RecorderOptions configures a Recorder. The zero value is usable.
type RecorderOptions struct {
	// MaxBytes is the byte budget of the archive: a request that would take
	// it past MaxBytes is refused with an error matching ErrBudgetExceeded
	// and its spans counted as dropped, so the start of the window is kept
	// and the end is lost. Zero means no budget.
	MaxBytes int64

	_ struct{}
}

// Recorder is a Sink that writes each request as one record of a span
// archive and counts, per source, what it took, dropped and refused. It is
// safe for concurrent use and also implements RefusalCounter.
//
// The archive must accept records as large as the receiver's
// MaxRequestBytes (archive.WriterOptions.MaxRecordSize). The Recorder does
// not close it.
type Recorder struct {
	w        *archive.Writer
	maxBytes int64

	appendMu sync.Mutex // budget check + append

	mu      sync.Mutex // counters
	sources map[sourceKey]*sourceCounters
	refused map[Reason]*RefusedStats
}

var (
	_ Sink           = (*Recorder)(nil)
	_ RefusalCounter = (*Recorder)(nil)
)

type sourceKey struct{ service, host string }

type sourceCounters struct {
	requests, spans, bytes int64
	dropped                map[Reason]int64
}

// NewRecorder returns a Recorder that appends to w.
func NewRecorder(w *archive.Writer, opts RecorderOptions) *Recorder {
	return &Recorder{
		w:        w,
		maxBytes: opts.MaxBytes,
		sources:  make(map[sourceKey]*sourceCounters),
		refused:  make(map[Reason]*RefusedStats),
	}
}

// Consume writes req as one archive record, unless that would pass the
// budget.
func (r *Recorder) Consume(_ context.Context, req []byte, b Batch) error {
	r.appendMu.Lock()
	reason, err := r.appendLocked(req)
	r.appendMu.Unlock()

	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.dropLocked(b, reason, len(req))
		return err
	}
	for _, res := range b.Resources {
		c := r.sourceLocked(res.Service, res.Host)
		c.spans += int64(res.Spans)
		c.bytes += int64(res.Bytes)
	}
	// A request counts once, for the source of its first resource (an
	// empty request for the unnamed source).
	var first sourceKey
	if len(b.Resources) > 0 {
		first = sourceKey{b.Resources[0].Service, b.Resources[0].Host}
	}
	r.sourceLocked(first.service, first.host).requests++
	return nil
}

func (r *Recorder) appendLocked(req []byte) (Reason, error) {
	if r.maxBytes > 0 {
		need := int64(len(req)) + 4 // the record and its length prefix
		st := r.w.Stats()
		// PendingBytes counts unflushed records at their raw size, most of
		// which zstd has already written out compressed: flush to learn the
		// true size before refusing.
		if st.WrittenBytes+st.PendingBytes+need > r.maxBytes && st.PendingBytes > 0 {
			if err := r.w.Flush(); err != nil {
				return ReasonWriteError, fmt.Errorf("record request: %w", err)
			}
			st = r.w.Stats()
		}
		if st.WrittenBytes+st.PendingBytes+need > r.maxBytes {
			return ReasonBudget, &RetryableError{
				Err: fmt.Errorf("refuse request of %d bytes: the span archive has %d of its %d bytes written: %w",
					len(req), st.WrittenBytes+st.PendingBytes, r.maxBytes, ErrBudgetExceeded),
				RetryAfter: BudgetRetryAfter,
			}
		}
	}
	if err := r.w.Append(req); err != nil {
		if errors.Is(err, archive.ErrRecordTooLarge) {
			return ReasonTooLarge, fmt.Errorf("record request: %w", err)
		}
		return ReasonWriteError, fmt.Errorf("record request: %w", err)
	}
	return "", nil
}

func (r *Recorder) sourceLocked(service, host string) *sourceCounters {
	k := sourceKey{service, host}
	c := r.sources[k]
	if c == nil {
		c = &sourceCounters{}
		r.sources[k] = c
	}
	return c
}

func (r *Recorder) dropLocked(b Batch, reason Reason, size int) {
	spans := 0
	for _, res := range b.Resources {
		c := r.sourceLocked(res.Service, res.Host)
		if c.dropped == nil {
			c.dropped = make(map[Reason]int64)
		}
		c.dropped[reason] += int64(res.Spans)
		spans += res.Spans
	}
	r.refuseLocked(reason, size, spans)
}

func (r *Recorder) refuseLocked(reason Reason, size, spans int) {
	s := r.refused[reason]
	if s == nil {
		s = &RefusedStats{Reason: reason}
		r.refused[reason] = s
	}
	s.Requests++
	s.Bytes += int64(size)
	s.Spans += int64(spans)
}

// CountRefusal counts a request the receiver refused before Consume. Its
// spans are unknown; its requests and bytes are counted.
func (r *Recorder) CountRefusal(f Refusal) {
	r.mu.Lock()
	r.refuseLocked(f.Reason, f.Bytes, 0)
	r.mu.Unlock()
}

// RecorderStats is a snapshot of a Recorder's counters. Its slices are
// sorted, so equal counters give equal snapshots.
type RecorderStats struct {
	// Requests, Spans and Bytes total what was written.
	Requests, Spans, Bytes int64
	// DroppedSpans totals the spans of refused requests that could be
	// counted.
	DroppedSpans int64
	// Sources has one entry per (service.name, host.name), sorted by
	// service then host.
	Sources []SourceStats
	// Refused has one entry per reason a request was refused, sorted by
	// reason.
	Refused []RefusedStats
	// Archive is the archive writer's own counters.
	Archive archive.Stats
}

// SourceStats counts the requests of one source: a service.name and
// host.name pair ("" when the resource did not say).
type SourceStats struct {
	Service string
	Host    string
	// Requests counts written requests whose first resource is this
	// source; Spans and Bytes count this source's spans and encoded
	// ResourceSpans bytes in written requests.
	Requests, Spans, Bytes int64
	// Dropped counts this source's spans in refused requests, per reason,
	// sorted by reason.
	Dropped []DroppedStats
}

// DroppedStats counts spans dropped for one reason.
type DroppedStats struct {
	Reason Reason
	Spans  int64
}

// RefusedStats counts requests refused for one reason: the requests, their
// size (decompressed, as far as it was read) and their spans when they
// could be counted.
type RefusedStats struct {
	Reason                 Reason
	Requests, Spans, Bytes int64
}

// Stats returns a snapshot of the counters.
func (r *Recorder) Stats() RecorderStats {
	st := RecorderStats{Archive: r.w.Stats()}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, c := range r.sources {
		s := SourceStats{Service: k.service, Host: k.host, Requests: c.requests, Spans: c.spans, Bytes: c.bytes}
		for reason, n := range c.dropped {
			s.Dropped = append(s.Dropped, DroppedStats{Reason: reason, Spans: n})
			st.DroppedSpans += n
		}
		slices.SortFunc(s.Dropped, func(a, b DroppedStats) int { return cmp.Compare(a.Reason, b.Reason) })
		st.Requests += c.requests
		st.Spans += c.spans
		st.Bytes += c.bytes
		st.Sources = append(st.Sources, s)
	}
	slices.SortFunc(st.Sources, func(a, b SourceStats) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Host, b.Host))
	})
	for _, s := range r.refused {
		st.Refused = append(st.Refused, *s)
	}
	slices.SortFunc(st.Refused, func(a, b RefusedStats) int { return cmp.Compare(a.Reason, b.Reason) })
	return st
}
