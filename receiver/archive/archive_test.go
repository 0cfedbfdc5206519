package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func records(n, maxSize int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	out := make([][]byte, n)
	for i := range out {
		size := 1 + rng.IntN(maxSize)
		b := make([]byte, size)
		// compressible but not constant: text-like bytes
		for j := range b {
			b[j] = byte('a' + rng.IntN(8))
		}
		out[i] = b
	}
	return out
}

func readAll(t *testing.T, data []byte) ([][]byte, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data), ReaderOptions{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var got [][]byte
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, bytes.Clone(rec))
	}
}

func TestRoundTrip(t *testing.T) {
	want := records(500, 4096, 1)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i, rec := range want {
		if err := w.Append(rec); err != nil {
			t.Fatal(err)
		}
		if i%97 == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Append(nil); err != nil {
		t.Fatalf("empty record: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Records != int64(len(want)) || st.WrittenBytes != int64(buf.Len()) || st.PendingBytes != 0 {
		t.Fatalf("stats %+v, archive %d bytes", st, buf.Len())
	}
	got, err := readAll(t, buf.Bytes())
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d differs", i)
		}
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.Append([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
}

// TestTruncatedAtEveryByte cuts a flushed archive at every length and checks
// that the reader returns exactly the records that were complete before the
// cut, then ErrTruncated, and never anything else.
func TestTruncatedAtEveryByte(t *testing.T) {
	want := records(12, 200, 2)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	// flushedAt[i] = archive size once records[:i+1] were flushed.
	flushedAt := make([]int, len(want))
	for i, rec := range want {
		if err := w.Append(rec); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		flushedAt[i] = buf.Len()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	for cut := 0; cut < len(full); cut++ {
		got, err := readAll(t, full[:cut])
		if cut < len(Magic) {
			if !errors.Is(err, ErrNotArchive) {
				t.Fatalf("cut %d: err %v, want ErrNotArchive", cut, err)
			}
			continue
		}
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut %d of %d: err %v, want ErrTruncated", cut, len(full), err)
		}
		complete := 0
		for complete < len(flushedAt) && flushedAt[complete] <= cut {
			complete++
		}
		if len(got) < complete {
			t.Fatalf("cut %d: got %d records, want at least the %d flushed before the cut", cut, len(got), complete)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("cut %d: record %d differs", cut, i)
			}
		}
	}
}

func TestNotArchiveAndVersion(t *testing.T) {
	if _, err := NewReader(bytes.NewReader([]byte("{\"resourceSpans\":[]}")), ReaderOptions{}); !errors.Is(err, ErrNotArchive) {
		t.Fatalf("json: %v", err)
	}
	h := header()
	h[len(Magic)] = Version + 1
	_, err := NewReader(bytes.NewReader(h), ReaderOptions{})
	var ve *UnsupportedVersionError
	if !errors.As(err, &ve) || ve.Version != Version+1 {
		t.Fatalf("newer version: %v", err)
	}
}

func TestRecordLimits(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{FlushInterval: -1, MaxRecordSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(make([]byte, 101)); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("writer limit: %v", err)
	}
	if err := w.Append(make([]byte, 100)); err != nil {
		t.Fatalf("a failed Append must not poison the writer: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(buf.Bytes()), ReaderOptions{MaxRecordSize: 99})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Next(); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("reader limit: %v", err)
	}
	r2, err := NewReader(bytes.NewReader(buf.Bytes()), ReaderOptions{MaxDecodedBytes: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := r2.Next(); err == nil {
		t.Fatal("decoded-bytes limit not enforced")
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	f.after -= len(p)
	return len(p), nil
}

func TestWriteErrorIsSticky(t *testing.T) {
	w, err := NewWriter(&failingWriter{after: headerSize}, WriterOptions{FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(bytes.Repeat([]byte("x"), 10)); err != nil {
		t.Fatalf("buffered append: %v", err)
	}
	first := w.Flush()
	if first == nil {
		t.Fatal("flush to a failing writer succeeded")
	}
	if err := w.Append([]byte("y")); err == nil || err.Error() != first.Error() {
		t.Fatalf("later append: %v, want sticky %v", err, first)
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close hid the write error")
	}
}

func TestCreateAndForEachFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a"+FileExtension)
	w, err := Create(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := w.Append([]byte(fmt.Sprintf("record %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive file: %v %v", fi, err)
	}
	var n int
	if err := ForEachFile(path, ReaderOptions{}, func(rec []byte) error {
		if want := fmt.Sprintf("record %d", n); string(rec) != want {
			return fmt.Errorf("record %d = %q", n, rec)
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 10 {
		t.Fatalf("read %d records", n)
	}
}

func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, WriterOptions{FlushInterval: -1})
	for _, rec := range records(5, 200, 3) {
		_ = w.Append(rec)
		_ = w.Flush()
	}
	_ = w.Close()
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()/2])
	f.Add(header())
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), ReaderOptions{MaxRecordSize: 1 << 20, MaxDecodedBytes: 16 << 20})
		if err != nil {
			return
		}
		defer r.Close()
		for i := 0; i < 10000; i++ {
			rec, err := r.Next()
			if err != nil {
				return
			}
			if len(rec) > 1<<20 {
				t.Fatalf("record of %d bytes passed the limit", len(rec))
			}
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), []byte("world"), uint8(1))
	f.Add([]byte{}, []byte{0, 0, 0, 0}, uint8(0))
	f.Fuzz(func(t *testing.T, a, b []byte, flushes uint8) {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, WriterOptions{FlushInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		var want [][]byte
		for i, rec := range [][]byte{a, b, a} {
			if err := w.Append(rec); err != nil {
				t.Fatal(err)
			}
			if len(rec) > 0 {
				want = append(want, rec)
			}
			if flushes&(1<<i) != 0 {
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := readAll(t, buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("got %d records, want %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("record %d differs", i)
			}
		}
	})
}
