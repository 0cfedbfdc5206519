package receiver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/trace-capture/trace-capture/receiver/archive"
)

// The ingest benchmarks measure what the receiver costs per span: the
// receiver and its Recorder run in the benchmark's process, the load comes
// from a child process (this test binary again, see TestMain), so the
// process's CPU time is the receiver's alone. Each operation is one request
// of ingestBatch spans shaped like the shared benchmark's
// (../shared/bench/otlp-ingest), every one with fresh ids. They report:
//
//	spans/s         acked spans per second of wall time
//	spans/cpu-s     spans per CPU-second of the receiver (its capacity on one core)
//	cpu-us/span     CPU microseconds per span
//	disk-B/span     archive bytes per span
//	peak-RSS-MB     the process's peak resident memory (harness included)
//
// A run ends with a check that every span sent is in the archive.
//
//	go test ./receiver -run '^$' -bench Ingest -benchtime 3000x -cpu 1
func BenchmarkIngestGRPC(b *testing.B) { benchmarkIngest(b, "grpc") }

// BenchmarkIngestHTTP is BenchmarkIngestGRPC over OTLP/HTTP (protobuf).
func BenchmarkIngestHTTP(b *testing.B) { benchmarkIngest(b, "http") }

const (
	ingestBatch   = 1000 // spans per request
	ingestWorkers = 8    // requests in flight
	loadClientEnv = "TRACE_CAPTURE_BENCH_LOAD"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(loadClientEnv); spec != "" {
		os.Exit(runLoadClient(spec))
	}
	os.Exit(m.Run())
}

func benchmarkIngest(b *testing.B, transport string) {
	dir := b.TempDir()
	path := filepath.Join(dir, "spans"+archive.FileExtension)
	w, err := archive.Create(path, archive.WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rec := NewRecorder(w, RecorderOptions{})
	r, err := New(loopback(), rec, Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	addr := r.Addrs().GRPC
	if transport == "http" {
		addr = r.Addrs().HTTP
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%d", loadClientEnv, transport, addr, b.N))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out

	b.ResetTimer()
	c0, t0 := cpuTime(), time.Now()
	runErr := cmd.Run()
	cpu, wall := cpuTime()-c0, time.Since(t0)
	b.StopTimer()

	if err := r.Shutdown(context.Background()); err != nil {
		b.Error(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if runErr != nil {
		b.Fatalf("load client: %v\n%s", runErr, out.Bytes())
	}
	spans := int64(b.N) * ingestBatch
	st := rec.Stats()
	if st.Spans != spans || st.DroppedSpans != 0 || len(st.Refused) != 0 {
		b.Fatalf("recorded %d of %d spans (dropped %d, refused %v)\n%s", st.Spans, spans, st.DroppedSpans, st.Refused, out.Bytes())
	}
	onDisk := int64(0)
	if err := archive.ForEachFile(path, archive.ReaderOptions{}, func(rec []byte) error {
		res, err := Scan(rec, nil)
		for _, x := range res {
			onDisk += int64(x.Spans)
		}
		return err
	}); err != nil {
		b.Fatal(err)
	}
	if onDisk != spans {
		b.Fatalf("the archive holds %d of the %d spans sent", onDisk, spans)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(spans)/wall.Seconds(), "spans/s")
	b.ReportMetric(float64(spans)/cpu.Seconds(), "spans/cpu-s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(spans), "cpu-us/span")
	b.ReportMetric(float64(fi.Size())/float64(spans), "disk-B/span")
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MB")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIngestRecorder is the receiver's hot path without a transport:
// Scan and Recorder.Consume of requests already in memory.
func BenchmarkIngestRecorder(b *testing.B) {
	path := filepath.Join(b.TempDir(), "spans"+archive.FileExtension)
	w, err := archive.Create(path, archive.WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rec := NewRecorder(w, RecorderOptions{})
	// 64 distinct requests of 6 services, more than a zstd window apart.
	var reqs [][]byte
	for i := range 64 {
		reqs = append(reqs, newSynthBatch(uint64(i%6)+1, ingestBatch).stamp(nil, uint64(i)))
	}
	var s scanner
	ctx := context.Background()
	c0 := cpuTime()
	i := 0
	for b.Loop() {
		req := reqs[i%len(reqs)]
		i++
		res, err := s.scan(req, make([]Resource, 0, 4))
		if err != nil {
			b.Fatal(err)
		}
		if err := rec.Consume(ctx, req, Batch{Resources: res}); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime() - c0
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	spans := float64(i * ingestBatch)
	b.ReportMetric(spans/cpu.Seconds(), "spans/cpu-s")
	b.ReportMetric(float64(cpu.Microseconds())/spans, "cpu-us/span")
	b.ReportMetric(float64(fi.Size())/spans, "disk-B/span")
}

// runLoadClient is the child process of benchmarkIngest: spec is
// "transport,addr,requests". It sends the requests with ingestWorkers in
// flight and returns the exit code.
func runLoadClient(spec string) int {
	parts := strings.Split(spec, ",")
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "bad load spec", spec)
		return 2
	}
	transport, addr := parts[0], parts[1]
	n, err := strconv.Atoi(parts[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var templates []*synthBatch
	for i := range 64 {
		templates = append(templates, newSynthBatch(uint64(i%6)+1+uint64(i/6)*6, ingestBatch))
	}

	var send func(w int, body []byte) error
	switch transport {
	case "grpc":
		conns := make([]*rawConn, 2)
		for i := range conns {
			c, err := newRawConn(addr)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer c.Close()
			conns[i] = c
		}
		send = func(w int, body []byte) error { return conns[w%len(conns)].export(body) }
	case "http":
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: ingestWorkers, DisableCompression: true}}
		url := "http://" + addr + TracesPath
		send = func(_ int, body []byte) error {
			resp, err := client.Post(url, contentTypeProtobuf, bytes.NewReader(body))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, _ = bufio.NewReader(resp.Body).WriteTo(devNull{})
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("HTTP %s", resp.Status)
			}
			return nil
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown transport", transport)
		return 2
	}

	var next, failed atomic.Int64
	var lastErr atomic.Value
	var wg sync.WaitGroup
	for w := range ingestWorkers {
		wg.Go(func() {
			var buf []byte
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				t := templates[i%int64(len(templates))]
				buf = t.stamp(buf, uint64(i))
				if err := send(w, buf); err != nil {
					failed.Add(1)
					lastErr.Store(err.Error())
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		fmt.Fprintf(os.Stderr, "%d of %d requests failed, the last with: %v\n", failed.Load(), n, lastErr.Load())
		return 1
	}
	return 0
}

type devNull struct{}

func (devNull) Write(p []byte) (int, error) { return len(p), nil }

// peakRSS is this process's peak resident set size in bytes (VmHWM).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// rawConn sends encoded requests over OTLP/gRPC.
type rawConn struct{ *grpc.ClientConn }

func newRawConn(addr string) (*rawConn, error) {
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawClientCodec{}), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	return &rawConn{c}, nil
}

func (c *rawConn) export(body []byte) error {
	return c.Invoke(context.Background(), "/"+traceServiceName+"/Export", &rawMsg{b: body}, &rawMsg{})
}
