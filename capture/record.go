package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/trace-capture/trace-capture/receiver"
	"github.com/trace-capture/trace-capture/receiver/archive"
	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
)

// RecordOptions configures Record.
type RecordOptions struct {
	// Receiver is where to listen (loopback OTLP ports by default).
	Receiver receiver.Config
	// MaxBytes is the span archive's byte budget; 0 means none.
	MaxBytes int64
	// Duration ends the recording; 0 records until ctx is cancelled.
	Duration time.Duration
	// Output is the bundle to write.
	Output string
	// ToolVersion goes into the manifest.
	ToolVersion string
	// Logger receives lifecycle events; they also go into the bundle's
	// log. Nil: only the bundle's log.
	Logger *slog.Logger
	// OnListening is called once the receiver listens.
	OnListening func(receiver.Addrs)
	// Progress is called about once per ProgressInterval while recording.
	Progress         func(RecordProgress)
	ProgressInterval time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	_ struct{}
}

// RecordProgress is a snapshot of a recording.
type RecordProgress struct {
	Elapsed time.Duration
	// Remaining is zero when recording until interrupted.
	Remaining time.Duration
	Stats     receiver.RecorderStats
}

// RecordResult says what Record wrote.
type RecordResult struct {
	Output   string
	Bytes    int64
	Manifest *bundle.Manifest
	Addrs    receiver.Addrs
	// Interrupted is set when ctx ended the recording before Duration.
	Interrupted bool
}

// Record receives OTLP on local ports for a window and writes a bundle.
// Cancelling ctx ends the window early; the bundle is still written, under
// a context of its own.
func Record(ctx context.Context, opts RecordOptions) (res *RecordResult, err error) {
	if opts.Output == "" {
		return nil, errors.New("record: no output path")
	}
	if err := opts.Receiver.Validate(); err != nil {
		return nil, fmt.Errorf("configure receiver: %w", err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	work, err := os.MkdirTemp(filepath.Dir(opts.Output), ".trace-capture-record-*")
	if err != nil {
		return nil, fmt.Errorf("create work folder: %w", err)
	}
	defer os.RemoveAll(work)
	logFile, err := os.OpenFile(filepath.Join(work, "trace-capture.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create log: %w", err)
	}
	defer logFile.Close()
	log := teeLogger(opts.Logger, logFile)

	archivePath := filepath.Join(work, "local"+archive.FileExtension)
	rc, err := StartRecording(ctx, RecordingOptions{Receiver: opts.Receiver, ArchivePath: archivePath, MaxBytes: opts.MaxBytes, Logger: log})
	if err != nil {
		return nil, err
	}
	defer rc.Abort(context.WithoutCancel(ctx))
	start := now()
	res = &RecordResult{Output: opts.Output, Addrs: rc.Addrs}
	log.Info("recording", "grpc", res.Addrs.GRPC, "http", res.Addrs.HTTP, "duration", opts.Duration, "max_bytes", opts.MaxBytes)
	if opts.OnListening != nil {
		opts.OnListening(res.Addrs)
	}

	res.Interrupted = waitWindow(ctx, opts, start, now, rc)

	// The window is over: whatever ended it, finish the bundle on a
	// context that the interrupt does not cancel.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	stopped, err := rc.Stop(fctx)
	end := now()
	if err != nil {
		return nil, err
	}
	stats, shutErr := stopped.Stats, stopped.ShutdownErr
	log.Info("recording stopped", "spans", stats.Spans, "dropped_spans", stats.DroppedSpans, "interrupted", res.Interrupted)

	m := &bundle.Manifest{
		Tool:     bundle.Tool{Name: "trace-capture", Version: opts.ToolVersion},
		Mode:     bundle.ModeLocal,
		Window:   bundle.Window{Start: start.UTC(), End: end.UTC()},
		Sources:  stopped.Sources(""),
		Refused:  stopped.Refused(),
		Archives: []bundle.Archive{stopped.Archive},
	}
	if res.Interrupted {
		m.Notes = append(m.Notes, "recording was interrupted before the end of its window")
	}
	if shutErr != nil {
		m.Notes = append(m.Notes, "receiver shutdown: "+shutErr.Error())
	}
	if len(m.Sources) == 0 {
		m.Notes = append(m.Notes, "no spans were received")
	}
	files := []bundle.File{{Name: LocalArchive, Path: archivePath}}
	if err := logFile.Sync(); err == nil {
		files = append(files, bundle.File{Name: bundle.LogsDir + "trace-capture.log", Path: logFile.Name()})
	}
	if err := bundle.WriteFile(opts.Output, m, files); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(opts.Output); err == nil {
		res.Bytes = fi.Size()
	}
	res.Manifest = m
	return res, nil
}

// waitWindow waits for the end of the window or ctx, reporting progress.
// It returns true when ctx ended it first.
func waitWindow(ctx context.Context, opts RecordOptions, start time.Time, now func() time.Time, rec *Recording) bool {
	var deadline <-chan time.Time
	if opts.Duration > 0 {
		t := time.NewTimer(opts.Duration)
		defer t.Stop()
		deadline = t.C
	}
	interval := opts.ProgressInterval
	if interval <= 0 {
		interval = time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return true
		case <-deadline:
			return false
		case <-tick.C:
			if opts.Progress != nil {
				elapsed := now().Sub(start)
				p := RecordProgress{Elapsed: elapsed, Stats: rec.Stats()}
				if opts.Duration > 0 {
					p.Remaining = max(opts.Duration-elapsed, 0)
				}
				opts.Progress(p)
			}
		}
	}
}

// ManifestSources converts a Recorder's counters into manifest sources;
// host names the node when the resources did not.
func ManifestSources(st receiver.RecorderStats, host string) []bundle.Source {
	out := make([]bundle.Source, 0, len(st.Sources))
	for _, s := range st.Sources {
		src := bundle.Source{Service: s.Service, Host: s.Host, Requests: s.Requests, Spans: s.Spans, Bytes: s.Bytes}
		if src.Host == "" {
			src.Host = host
		}
		for _, d := range s.Dropped {
			src.Dropped = append(src.Dropped, bundle.Drop{Reason: string(d.Reason), Spans: d.Spans})
		}
		out = append(out, src)
	}
	return out
}

func manifestRefusals(st receiver.RecorderStats) []bundle.Refusal {
	var out []bundle.Refusal
	for _, r := range st.Refused {
		out = append(out, bundle.Refusal{Reason: string(r.Reason), Requests: r.Requests, Spans: r.Spans, Bytes: r.Bytes})
	}
	return out
}

// teeLogger returns a logger that writes to w (as text, at Info and above)
// and to base, if any.
func teeLogger(base *slog.Logger, w *os.File) *slog.Logger {
	file := slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})
	if base == nil {
		return slog.New(file)
	}
	return slog.New(slog.NewMultiHandler(base.Handler(), file))
}
