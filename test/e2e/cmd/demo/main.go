// Command demo runs trace-capture's whole job on a local control plane (see
// package scenario) and prints where the bundle and the report are. `make
// demo` builds what it needs and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/trace-capture/trace-capture/test/e2e/scenario"
)

func main() {
	var opts scenario.Options
	flag.StringVar(&opts.TraceCapture, "trace-capture", "bin/trace-capture", "trace-capture binary")
	flag.StringVar(&opts.EtcdBinary, "etcd", "", "etcd binary")
	flag.StringVar(&opts.APIServerBinary, "kube-apiserver", "", "kube-apiserver binary")
	flag.StringVar(&opts.Dir, "dir", "demo-out", "output folder (emptied first)")
	flag.DurationVar(&opts.LoadDuration, "load", 20*time.Second, "length of the load phase")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts scenario.Options) error {
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	opts.Dir = dir
	began := time.Now()
	opts.Step = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%5.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	res, err := scenario.Run(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Println(res.RecordOutput)
	fmt.Println(res.AnalyzeOutput)
	fmt.Printf("etcd %s flags added:           %v\n", res.EtcdVersion, res.EtcdFlags)
	fmt.Printf("kube-apiserver %s flags added: %v\n", res.APIServerVersion, res.APIServerFlags)
	fmt.Printf("files changed then restored byte for byte: %v (identical after restore: %v)\n", res.ChangedFiles, res.Identical)
	fmt.Printf("load: %d requests (%d creates, %d lists, %d watches, %d traced)\n", res.Load.Requests, res.Load.Creates, res.Load.Lists, res.Load.Watches, len(res.Load.Traced))
	fmt.Print("phases:")
	for _, t := range res.Timings {
		fmt.Printf(" %s %s;", t.Phase, t.Duration)
	}
	fmt.Printf("\n\nbundle: %s\nreport: %s\n", res.Bundle, filepath.Join(res.ReportDir, "report.html"))
	return nil
}
