package receiver

import (
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// BenchmarkScan compares Scan with a full pdata decode on the same
// requests: the cost the receiver saves on its hot path.
func BenchmarkScan(b *testing.B) {
	synth := newSynthBatch(1, 1000)
	inputs := []struct {
		name string
		reqs [][]byte
	}{
		{"synthetic", [][]byte{synth.req}},
		{"real", realRequests(b)},
	}
	for _, in := range inputs {
		var bytes, spans int
		for _, r := range in.reqs {
			bytes += len(r)
			res, err := Scan(r, nil)
			if err != nil {
				b.Fatal(err)
			}
			for _, x := range res {
				spans += x.Spans
			}
		}
		b.Run(in.name+"/scan", func(b *testing.B) {
			b.SetBytes(int64(bytes))
			var s scanner
			var res []Resource
			c0 := cpuTime()
			for b.Loop() {
				for _, r := range in.reqs {
					res, _ = s.scan(r, res[:0])
				}
			}
			b.ReportMetric(float64(cpuTime()-c0)/float64(b.N)/float64(spans), "cpu-ns/span")
		})
		b.Run(in.name+"/pdata", func(b *testing.B) {
			b.SetBytes(int64(bytes))
			c0 := cpuTime()
			for b.Loop() {
				for _, r := range in.reqs {
					er := ptraceotlp.NewExportRequest()
					if err := er.UnmarshalProto(r); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(cpuTime()-c0)/float64(b.N)/float64(spans), "cpu-ns/span")
		})
	}
}

// cpuTime is the CPU time (user and system) of this process so far: on a
// shared machine it measures cost where wall time measures contention.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
