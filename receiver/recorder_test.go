package receiver

import (
	"errors"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/trace-capture/trace-capture/receiver/archive"
)

func newTestRecorder(t *testing.T, opts RecorderOptions) (*Recorder, *archive.Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r"+archive.FileExtension)
	w, err := archive.Create(path, archive.WriterOptions{FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return NewRecorder(w, opts), w, path
}

func TestRecorderStats(t *testing.T) {
	rec, w, path := newTestRecorder(t, RecorderOptions{})
	ctx := t.Context()
	consume := func(req string, res ...Resource) {
		t.Helper()
		if err := rec.Consume(ctx, []byte(req), Batch{Transport: TransportGRPC, Resources: res}); err != nil {
			t.Fatal(err)
		}
	}
	consume("one", Resource{Service: "etcd", Host: "m1", Spans: 3, Bytes: 30})
	consume("two", Resource{Service: "apiserver", Host: "m1", Spans: 5, Bytes: 50}, Resource{Service: "etcd", Host: "m1", Spans: 1, Bytes: 10})
	consume("three", Resource{Service: "apiserver", Host: "m0", Spans: 2, Bytes: 20})
	consume("") // an empty request
	rec.CountRefusal(Refusal{Reason: ReasonMalformedJSON, Bytes: 7})
	rec.CountRefusal(Refusal{Reason: ReasonDecompression, Bytes: 9})
	rec.CountRefusal(Refusal{Reason: ReasonMalformedJSON, Bytes: 1})

	got := rec.Stats()
	got.Archive = archive.Stats{}
	want := RecorderStats{
		Requests: 4, Spans: 11, Bytes: 110,
		Sources: []SourceStats{
			{Service: "", Host: "", Requests: 1},
			{Service: "apiserver", Host: "m0", Requests: 1, Spans: 2, Bytes: 20},
			{Service: "apiserver", Host: "m1", Requests: 1, Spans: 5, Bytes: 50},
			{Service: "etcd", Host: "m1", Requests: 1, Spans: 4, Bytes: 40},
		},
		Refused: []RefusedStats{
			{Reason: ReasonDecompression, Requests: 1, Bytes: 9},
			{Reason: ReasonMalformedJSON, Requests: 2, Bytes: 8},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Stats() =\n%+v\nwant\n%+v", got, want)
	}
	if a := rec.Stats().Archive; a.Records != 3 || a.RawBytes != int64(len("onetwothree")) {
		t.Errorf("archive stats %+v: want 3 records of 11 bytes", a)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var recs []string
	if err := archive.ForEachFile(path, archive.ReaderOptions{}, func(r []byte) error { recs = append(recs, string(r)); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(recs, []string{"one", "two", "three"}) {
		t.Errorf("records %q", recs)
	}
}

func TestRecorderBudgetFlushesBeforeRefusing(t *testing.T) {
	// A budget smaller than the raw size of what goes in: only a flush shows
	// that the compressed archive still has room.
	batch := newSynthBatch(8, 100)
	rec, w, _ := newTestRecorder(t, RecorderOptions{MaxBytes: int64(3 * len(batch.req))})
	n := 0
	for ; n < 50; n++ {
		err := rec.Consume(t.Context(), batch.stamp(nil, uint64(n)), Batch{Resources: []Resource{{Service: "s", Spans: 100}}})
		if errors.Is(err, ErrBudgetExceeded) {
			var re *RetryableError
			if !errors.As(err, &re) || re.RetryAfter != BudgetRetryAfter {
				t.Errorf("budget error %v is not retryable after %s", err, BudgetRetryAfter)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n <= 3 || n == 50 {
		t.Fatalf("%d requests of %d bytes fit in a budget of %d", n, len(batch.req), 3*len(batch.req))
	}
	st := w.Stats()
	if st.WrittenBytes+st.PendingBytes > int64(3*len(batch.req)) {
		t.Errorf("the archive holds %d bytes, above the budget", st.WrittenBytes+st.PendingBytes)
	}
	if err := rec.Consume(t.Context(), []byte("tiny"), Batch{}); err != nil {
		t.Errorf("a small request was refused although it fits: %v", err)
	}
}

func TestRecorderConcurrent(t *testing.T) {
	rec, _, _ := newTestRecorder(t, RecorderOptions{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				svc := []string{"a", "b"}[(g+i)%2]
				if err := rec.Consume(t.Context(), []byte("request"), Batch{Resources: []Resource{{Service: svc, Spans: 2, Bytes: 7}}}); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					rec.CountRefusal(Refusal{Reason: ReasonTooLarge})
					_ = rec.Stats()
				}
			}
		})
	}
	wg.Wait()
	st := rec.Stats()
	if st.Requests != 800 || st.Spans != 1600 || len(st.Sources) != 2 || st.Sources[0].Spans != 800 || st.Refused[0].Requests != 80 || st.Archive.Records != 800 {
		t.Errorf("stats after concurrent use: %+v", st)
	}
}

func TestRecorderWriteError(t *testing.T) {
	rec, w, _ := newTestRecorder(t, RecorderOptions{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	err := rec.Consume(t.Context(), []byte("late"), Batch{Resources: []Resource{{Service: "s", Spans: 4}}})
	if !errors.Is(err, archive.ErrClosed) {
		t.Fatalf("Consume after the archive closed = %v", err)
	}
	st := rec.Stats()
	if st.DroppedSpans != 4 || len(st.Refused) != 1 || st.Refused[0].Reason != ReasonWriteError {
		t.Errorf("stats %+v: want 4 spans dropped for a write error", st)
	}
}
