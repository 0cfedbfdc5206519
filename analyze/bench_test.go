package analyze

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trace-capture/trace-capture/receiver/archive"
)

// Benchmark and scale test inputs are generated from the real capture the
// way ../shared/bench/analyze-peer/cmd/gen does (same algorithm, same seed,
// so the same requests): the capture is written again and again, each copy
// with fresh random trace and span ids (ChaCha8, seed 1; parent links
// remapped through the same table) and timestamps shifted past the previous
// copy, the last copy cut at exactly N spans. Files are protobuf frames
// (4-byte big-endian length + ExportTraceServiceRequest, the Collector file
// exporter's format: proto) and are cached in $TMPDIR/trace-capture-analyze.
var (
	flagFile    = flag.String("analyze.file", "", "TestAnalyzeFile: analyze this file (protobuf frames, or a span archive when it ends in .tcspans)")
	flagGen     = flag.Int64("analyze.gen", 0, "TestAnalyzeFile: generate a capture of N spans first (cached) and analyze it")
	flagArchive = flag.Bool("analyze.archive", false, "TestAnalyzeFile with -analyze.gen: analyze the span archive copy instead of the frames")
	flagJSON    = flag.String("analyze.json", "", "TestAnalyzeFile: write the Result as JSON here")
)

const realCapture = "../testdata/apiserver-etcd.otlp.jsonl.gz"

func genDir() string { return filepath.Join(os.TempDir(), "trace-capture-analyze") }

// generated returns the paths of the frames file and the span archive of
// an n-span capture, generating them when missing.
func generated(tb testing.TB, n int64) (frames, arch string) {
	tb.Helper()
	dir := genDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	frames = filepath.Join(dir, fmt.Sprintf("spans-%d.otlp.pb", n))
	arch = filepath.Join(dir, fmt.Sprintf("spans-%d.tcspans", n))
	if fileExists(frames) && fileExists(arch) {
		return frames, arch
	}
	t0 := time.Now()
	if err := genCapture(tb, n, frames+".tmp", arch+".tmp"); err != nil {
		tb.Fatal(err)
	}
	for _, p := range []string{frames, arch} {
		if err := os.Rename(p+".tmp", p); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Logf("generated %d spans in %s", n, time.Since(t0).Round(time.Millisecond))
	return frames, arch
}

func fileExists(p string) bool { st, err := os.Stat(p); return err == nil && st.Size() > 0 }

func genCapture(tb testing.TB, n int64, framesPath, archPath string) error {
	recs := loadJSONLines(tb, realCapture)
	var um ptrace.ProtoUnmarshaler
	var reqs []ptrace.Traces
	minStart, maxEnd := ^uint64(0), uint64(0)
	for _, r := range recs {
		td, err := um.UnmarshalTraces(r)
		if err != nil {
			return err
		}
		forEachSpan(td, func(s ptrace.Span) {
			minStart = min(minStart, uint64(s.StartTimestamp()))
			maxEnd = max(maxEnd, uint64(s.EndTimestamp()))
		})
		reqs = append(reqs, td)
	}
	period := maxEnd - minStart + uint64(time.Millisecond)

	ff, err := os.Create(framesPath)
	if err != nil {
		return err
	}
	defer ff.Close()
	fw := bufio.NewWriterSize(ff, 4<<20)
	aw, err := archive.Create(archPath, archive.WriterOptions{FlushInterval: -1})
	if err != nil {
		return err
	}
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], 1)
	rng := rand.New(rand.NewChaCha8(seed))
	var pm ptrace.ProtoMarshaler
	var written int64
	var frame [4]byte
	for cp := uint64(0); written < n; cp++ {
		shift := cp * period
		traceMap := map[pcommon.TraceID]pcommon.TraceID{}
		spanMap := map[[24]byte]pcommon.SpanID{}
		newSpan := func(tid pcommon.TraceID, sid pcommon.SpanID) pcommon.SpanID {
			var k [24]byte
			copy(k[:16], tid[:])
			copy(k[16:], sid[:])
			if v, ok := spanMap[k]; ok {
				return v
			}
			var v pcommon.SpanID
			binary.LittleEndian.PutUint64(v[:], rng.Uint64()|1)
			spanMap[k] = v
			return v
		}
		for _, src := range reqs {
			if written >= n {
				break
			}
			td := ptrace.NewTraces()
			src.CopyTo(td)
			left := n - written
			cnt := int64(0)
			rss := td.ResourceSpans()
			for i := 0; i < rss.Len(); i++ {
				sss := rss.At(i).ScopeSpans()
				for j := 0; j < sss.Len(); j++ {
					spans := sss.At(j).Spans()
					spans.RemoveIf(func(ptrace.Span) bool { cnt++; return cnt > left })
					for k := 0; k < spans.Len(); k++ {
						sp := spans.At(k)
						otid := sp.TraceID()
						ntid, ok := traceMap[otid]
						if !ok {
							binary.LittleEndian.PutUint64(ntid[:8], rng.Uint64())
							binary.LittleEndian.PutUint64(ntid[8:], rng.Uint64()|1)
							traceMap[otid] = ntid
						}
						sp.SetTraceID(ntid)
						sp.SetSpanID(newSpan(otid, sp.SpanID()))
						if p := sp.ParentSpanID(); !p.IsEmpty() {
							sp.SetParentSpanID(newSpan(otid, p))
						}
						sp.SetStartTimestamp(pcommon.Timestamp(uint64(sp.StartTimestamp()) + shift))
						sp.SetEndTimestamp(pcommon.Timestamp(uint64(sp.EndTimestamp()) + shift))
						evs := sp.Events()
						for e := 0; e < evs.Len(); e++ {
							evs.At(e).SetTimestamp(pcommon.Timestamp(uint64(evs.At(e).Timestamp()) + shift))
						}
						links := sp.Links()
						for l := 0; l < links.Len(); l++ {
							lk := links.At(l)
							if nt, ok := traceMap[lk.TraceID()]; ok {
								lk.SetSpanID(newSpan(lk.TraceID(), lk.SpanID()))
								lk.SetTraceID(nt)
							}
						}
					}
				}
			}
			c := int64(td.SpanCount())
			if c == 0 {
				continue
			}
			written += c
			b, err := pm.MarshalTraces(td)
			if err != nil {
				return err
			}
			binary.BigEndian.PutUint32(frame[:], uint32(len(b)))
			if _, err := fw.Write(frame[:]); err != nil {
				return err
			}
			if _, err := fw.Write(b); err != nil {
				return err
			}
			if err := aw.Append(b); err != nil {
				return err
			}
		}
	}
	if err := fw.Flush(); err != nil {
		return err
	}
	if err := aw.Close(); err != nil {
		return err
	}
	return ff.Close()
}

func forEachSpan(td ptrace.Traces, fn func(ptrace.Span)) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sp := sss.At(j).Spans()
			for k := 0; k < sp.Len(); k++ {
				fn(sp.At(k))
			}
		}
	}
}

// framesSource reads protobuf frames (4-byte big-endian length + record)
// from the file at path, reusing one buffer.
func framesSource(path string) RecordSource {
	return func(yield func([]byte) error) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		br := bufio.NewReaderSize(f, 1<<20)
		var hdr [4]byte
		var buf []byte
		for {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			n := binary.BigEndian.Uint32(hdr[:])
			if cap(buf) < int(n) {
				buf = make([]byte, n)
			}
			buf = buf[:n]
			if _, err := io.ReadFull(br, buf); err != nil {
				return err
			}
			if err := yield(buf); err != nil {
				return err
			}
		}
	}
}

func archiveSource(path string) RecordSource {
	return func(yield func([]byte) error) error {
		return archive.ForEachFile(path, archive.ReaderOptions{}, yield)
	}
}

// procStatus returns a field of /proc/self/status in bytes (0 when absent).
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// resetPeakRSS resets VmHWM to the current RSS (Linux >= 4.0).
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

type runFigures struct {
	spans         int64
	elapsed       time.Duration
	cpu           time.Duration // user + system CPU time of the process during the run
	baseRSS, peak int64
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (f runFigures) String() string {
	sec := f.elapsed.Seconds()
	return fmt.Sprintf("spans=%d elapsed=%.3fs spans_per_s=%.0f cpu=%.3fs spans_per_cpu_s=%.0f peak_rss_MiB=%.1f rss_bytes_per_span=%.1f (above the %.1f MiB before the run: %.1f)",
		f.spans, sec, float64(f.spans)/sec, f.cpu.Seconds(), float64(f.spans)/f.cpu.Seconds(), float64(f.peak)/(1<<20), float64(f.peak)/float64(f.spans),
		float64(f.baseRSS)/(1<<20), float64(f.peak-f.baseRSS)/float64(f.spans))
}

// measure runs Run on src and returns the figures.
func measure(tb testing.TB, src RecordSource) (*Result, runFigures) {
	tb.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	base := procStatus("VmRSS")
	resetPeakRSS()
	c0, t0 := cpuTime(), time.Now()
	res, err := Run(context.Background(), Options{}, src)
	el, cpu := time.Since(t0), cpuTime()-c0
	if err != nil {
		tb.Fatal(err)
	}
	return res, runFigures{spans: res.Summary.Spans, elapsed: el, cpu: cpu, baseRSS: base, peak: procStatus("VmHWM")}
}

// BenchmarkAnalyze1M analyzes a generated 1,000,000-span capture end to end
// from a span archive (zstd decompression, decoding, analysis) and prints
// spans/s and peak RSS per span. Run alone:
//
//	go test ./analyze -run '^$' -bench Analyze1M -benchtime 3x
func BenchmarkAnalyze1M(b *testing.B) { benchAnalyze(b, 1_000_000, true) }

// BenchmarkAnalyze1MFrames is BenchmarkAnalyze1M reading the uncompressed
// protobuf frames file the peers read.
func BenchmarkAnalyze1MFrames(b *testing.B) { benchAnalyze(b, 1_000_000, false) }

// BenchmarkAnalyze10M is the 10-million-span run (about 3 GB of frames are
// generated once into $TMPDIR). Skipped unless -analyze.10m is given.
func BenchmarkAnalyze10M(b *testing.B) {
	if !*flag10M {
		b.Skip("pass -analyze.10m to run (generates ~3 GB in $TMPDIR)")
	}
	benchAnalyze(b, 10_000_000, true)
}

var flag10M = flag.Bool("analyze.10m", false, "run BenchmarkAnalyze10M")

func benchAnalyze(b *testing.B, n int64, fromArchive bool) {
	frames, arch := generated(b, n)
	src := framesSource(frames)
	if fromArchive {
		src = archiveSource(arch)
	}
	b.ResetTimer()
	var last runFigures
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		runtime.GC()
		b.StartTimer()
		_, last = measure(b, src)
	}
	b.StopTimer()
	if last.spans != n {
		b.Fatalf("analyzed %d spans, want %d", last.spans, n)
	}
	b.ReportMetric(float64(last.spans)/last.elapsed.Seconds(), "spans/s")
	b.ReportMetric(float64(last.spans)/last.cpu.Seconds(), "spans/cpu_s")
	b.ReportMetric(float64(last.peak)/float64(last.spans), "rss_B/span")
	fmt.Fprintf(os.Stderr, "analyze %s: %s\n", filepath.Base(map[bool]string{true: arch, false: frames}[fromArchive]), last)
}

// TestAnalyzeFile analyzes a file given with -analyze.file (or a generated
// capture with -analyze.gen N) and prints the figures; hack/bench-analyze.sh
// runs it in a fresh process next to the peers. Skipped without a flag.
func TestAnalyzeFile(t *testing.T) {
	path := *flagFile
	if *flagGen > 0 {
		frames, arch := generated(t, *flagGen)
		path = frames
		if *flagArchive {
			path = arch
		}
	}
	if path == "" {
		t.Skip("pass -analyze.file PATH or -analyze.gen N")
	}
	src := framesSource(path)
	if strings.HasSuffix(path, archive.FileExtension) {
		src = archiveSource(path)
	}
	res, fig := measure(t, src)
	fmt.Printf("analyze: file=%s %s\n", filepath.Base(path), fig)
	if len(res.Edges) == 0 {
		t.Errorf("no edges in %s", path)
	}
	for _, e := range res.Edges {
		fmt.Printf("analyze: edge %s->%s calls=%d client=%+v server=%+v\n", e.ClientService, e.ServerService, e.Calls, e.ClientMs, e.ServerMs)
	}
	if *flagJSON != "" {
		if err := writeJSON(*flagJSON, res); err != nil {
			t.Fatal(err)
		}
	}
}
