// Command benchrecv runs trace-capture's OTLP receiver with a Recorder for
// the ingest benchmark (../shared/bench/otlp-ingest/run.sh), until SIGTERM
// or SIGINT, and counts the spans of the archives it wrote.
//
//	benchrecv [-grpc ADDR] [-http ADDR] [-out DIR] [-max-bytes N]
//	benchrecv count DIR
//
// The first form writes DIR/spans.tcspans and prints the Recorder's counters
// to stderr when it stops. The second decodes every record of every archive
// under DIR with pdata and prints spans_on_disk=N.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/trace-capture/trace-capture/receiver"
	"github.com/trace-capture/trace-capture/receiver/archive"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "count" {
		if err := count(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "benchrecv count:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchrecv:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := receiver.DefaultConfig()
	flag.StringVar(&cfg.GRPCAddr, "grpc", cfg.GRPCAddr, "OTLP/gRPC listen address (empty: off)")
	flag.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "OTLP/HTTP listen address (empty: off)")
	flag.IntVar(&cfg.MaxRequestBytes, "max-request-bytes", cfg.MaxRequestBytes, "largest request, decompressed")
	out := flag.String("out", os.Getenv("OUT_DIR"), "directory for the span archive")
	maxBytes := flag.Int64("max-bytes", 0, "byte budget of the archive (0: none)")
	flag.Parse()
	if *out == "" {
		return errors.New("no -out directory (or OUT_DIR)")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	w, err := archive.Create(filepath.Join(*out, "spans"+archive.FileExtension), archive.WriterOptions{MaxRecordSize: cfg.MaxRequestBytes})
	if err != nil {
		return err
	}
	rec := receiver.NewRecorder(w, receiver.RecorderOptions{MaxBytes: *maxBytes})
	r, err := receiver.New(cfg, rec, receiver.Options{Logger: log})
	if err != nil {
		return errors.Join(err, w.Close())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := r.Start(ctx); err != nil {
		return errors.Join(err, w.Close())
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = errors.Join(r.Shutdown(sctx), w.Close())
	st := rec.Stats()
	enc := json.NewEncoder(os.Stderr)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
	return err
}

func count(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: benchrecv count DIR")
	}
	var spans, records int64
	err := filepath.WalkDir(args[0], func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, archive.FileExtension) {
			return err
		}
		return archive.ForEachFile(path, archive.ReaderOptions{}, func(rec []byte) error {
			er := ptraceotlp.NewExportRequest()
			if err := er.UnmarshalProto(rec); err != nil {
				return fmt.Errorf("record %d: %w", records+1, err)
			}
			records++
			spans += int64(er.Traces().SpanCount())
			return nil
		})
	})
	fmt.Printf("records=%d spans_on_disk=%d\n", records, spans)
	return err
}
