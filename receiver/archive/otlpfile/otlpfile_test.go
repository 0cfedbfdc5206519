package otlpfile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trace-capture/trace-capture/receiver/archive"
)

func realCapture(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "apiserver-etcd.otlp.jsonl.gz")
}

func loadReal(t testing.TB) [][]byte {
	t.Helper()
	var recs [][]byte
	format, err := ReadFile(realCapture(t), Options{}, func(rec []byte) error {
		recs = append(recs, bytes.Clone(rec))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if format != FormatJSON {
		t.Fatalf("format %s", format)
	}
	return recs
}

func spanCount(t testing.TB, recs [][]byte) int {
	t.Helper()
	n := 0
	for _, r := range recs {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(r)
		if err != nil {
			t.Fatal(err)
		}
		n += td.SpanCount()
	}
	return n
}

func TestRealCaptureJSONLines(t *testing.T) {
	recs := loadReal(t)
	if len(recs) != 62 || spanCount(t, recs) != 10949 {
		t.Fatalf("%d records, %d spans; want 62 and 10949", len(recs), spanCount(t, recs))
	}
}

func readAllFormat(t *testing.T, data []byte) (Format, [][]byte, error) {
	t.Helper()
	var recs [][]byte
	f, err := Read(bytes.NewReader(data), Options{}, func(rec []byte) error {
		recs = append(recs, bytes.Clone(rec))
		return nil
	})
	return f, recs, err
}

func frame(payload []byte) []byte {
	var lb [4]byte
	binary.BigEndian.PutUint32(lb[:], uint32(len(payload)))
	return append(lb[:], payload...)
}

func TestFormats(t *testing.T) {
	recs := loadReal(t)[:5]
	enc, _ := zstd.NewWriter(nil)
	var proto, protoZstd, jsonZstd, jsonLines, pretty, array bytes.Buffer
	var docs []json.RawMessage
	for _, r := range recs {
		proto.Write(frame(r))
		protoZstd.Write(frame(enc.EncodeAll(r, nil)))
		td, _ := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(r)
		j, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
		jsonZstd.Write(frame(enc.EncodeAll(j, nil)))
		jsonLines.Write(append(j, '\n'))
		docs = append(docs, j)
	}
	ind, _ := json.MarshalIndent(json.RawMessage(docs[0]), "", "  ")
	pretty.Write(ind)
	arr, _ := json.Marshal(docs)
	array.Write(arr)
	wholeZstd := enc.EncodeAll(proto.Bytes(), nil)

	var archived bytes.Buffer
	aw, _ := archive.NewWriter(&archived, archive.WriterOptions{FlushInterval: -1})
	for _, r := range recs {
		_ = aw.Append(r)
	}
	_ = aw.Close()

	cases := []struct {
		name   string
		data   []byte
		format Format
		n      int
	}{
		{"proto frames", proto.Bytes(), FormatProto, 5},
		{"zstd proto frames", protoZstd.Bytes(), FormatProtoZstd, 5},
		{"zstd json frames", jsonZstd.Bytes(), FormatJSONFramed, 5},
		{"json lines", jsonLines.Bytes(), FormatJSON, 5},
		{"pretty json", pretty.Bytes(), FormatJSON, 1},
		{"json array", array.Bytes(), FormatJSON, 5},
		{"whole-file zstd", wholeZstd, FormatProto, 5},
		{"span archive", archived.Bytes(), FormatSpanArchive, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			format, got, err := readAllFormat(t, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if format != tc.format || len(got) != tc.n {
				t.Fatalf("format %s with %d records, want %s with %d", format, len(got), tc.format, tc.n)
			}
			for i := range got {
				a, _ := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(got[i])
				b, _ := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(recs[i])
				ja, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(a)
				jb, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(b)
				if !bytes.Equal(ja, jb) {
					t.Fatalf("record %d differs after reading", i)
				}
			}
		})
	}
}

func TestWriteRoundTrip(t *testing.T) {
	recs := loadReal(t)
	for _, format := range []Format{FormatProto, FormatJSON} {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, format)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		gotFormat, got, err := readAllFormat(t, buf.Bytes())
		if err != nil || gotFormat != format || len(got) != len(recs) {
			t.Fatalf("%s: %v, %s, %d records", format, err, gotFormat, len(got))
		}
		for i := range recs {
			if format == FormatProto && !bytes.Equal(got[i], recs[i]) {
				t.Fatalf("proto record %d not byte-identical", i)
			}
			a, _ := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(got[i])
			b, _ := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(recs[i])
			if a.SpanCount() != b.SpanCount() {
				t.Fatalf("%s record %d: %d spans, want %d", format, i, a.SpanCount(), b.SpanCount())
			}
		}
	}
	if _, err := NewWriter(&bytes.Buffer{}, "yaml"); err == nil {
		t.Fatal("unknown output format accepted")
	}
}

func TestBadInput(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":         nil,
		"text":          []byte("hello, this is not a trace file at all"),
		"json not otlp": []byte(`{"kind":"Pod","metadata":{}}`),
		"bad json":      []byte(`{"resourceSpans": [`),
		"bad frame":     frame([]byte("\xff\xff\xff garbage")),
		"huge frame":    {0x7f, 0xff, 0xff, 0xff, 1, 2, 3},
	} {
		_, _, err := readAllFormat(t, data)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	_, _, err := readAllFormat(t, []byte("\x00\x00\x00\x05hello"))
	if !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("garbage frame: %v", err)
	}
	// A cut second record is reported, the first is delivered.
	rec := loadReal(t)[0]
	data := append(frame(rec), frame(rec)[:100]...)
	_, got, err := readAllFormat(t, data)
	if len(got) != 1 || !errors.Is(err, archive.ErrTruncated) {
		t.Fatalf("cut input: %d records, %v", len(got), err)
	}
}

func FuzzRead(f *testing.F) {
	recs := loadReal(f)
	f.Add(frame(recs[0][:200]))
	j, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(func() ptrace.Traces {
		td, _ := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(recs[1])
		return td
	}())
	f.Add(j[:500])
	f.Add([]byte("[{}]"))
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Read(bytes.NewReader(data), Options{MaxRecordSize: 1 << 20, MaxDecodedBytes: 8 << 20}, func(rec []byte) error {
			if _, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec); err != nil {
				t.Fatalf("Read passed on an invalid record: %v", err)
			}
			return nil
		})
	})
}
