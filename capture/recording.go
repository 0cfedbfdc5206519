package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/trace-capture/trace-capture/receiver"
	"github.com/trace-capture/trace-capture/receiver/archive"
	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
)

// LocalArchive is the bundle entry of a local recording's span archive.
const LocalArchive = bundle.SpansDir + "local" + archive.FileExtension

// RecordingOptions configures StartRecording.
type RecordingOptions struct {
	// Receiver is where to listen.
	Receiver receiver.Config
	// ArchivePath is the span archive to write.
	ArchivePath string
	// MaxBytes is the archive's byte budget; 0 means none.
	MaxBytes int64
	// Wrap, if set, puts a sink in front of the recorder (it must pass
	// requests on to the sink it is given).
	Wrap   func(receiver.Sink) receiver.Sink
	Logger *slog.Logger
}

// Recording is an OTLP receiver that writes every request it accepts into
// one span archive: what record and probe share.
type Recording struct {
	Addrs    receiver.Addrs
	recorder *receiver.Recorder
	archive  *archive.Writer
	rcv      *receiver.Receiver
	done     bool
}

// Stopped is what a finished Recording took in.
type Stopped struct {
	Stats receiver.RecorderStats
	// Archive describes the span archive as the manifest lists it
	// (LocalArchive).
	Archive bundle.Archive
	// ShutdownErr is an error of stopping the receiver; the archive is
	// complete all the same.
	ShutdownErr error
}

// StartRecording creates the archive and starts the receiver.
func StartRecording(ctx context.Context, o RecordingOptions) (*Recording, error) {
	maxReq := o.Receiver.MaxRequestBytes
	if maxReq <= 0 {
		maxReq = receiver.DefaultMaxRequestBytes
	}
	aw, err := archive.Create(o.ArchivePath, archive.WriterOptions{MaxRecordSize: maxReq})
	if err != nil {
		return nil, err
	}
	rec := receiver.NewRecorder(aw, receiver.RecorderOptions{MaxBytes: o.MaxBytes})
	var sink receiver.Sink = rec
	if o.Wrap != nil {
		sink = o.Wrap(rec)
	}
	rcv, err := receiver.New(o.Receiver, sink, receiver.Options{Logger: o.Logger})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("create receiver: %w", err), aw.Close())
	}
	if err := rcv.Start(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("start receiver: %w", err), aw.Close())
	}
	return &Recording{Addrs: rcv.Addrs(), recorder: rec, archive: aw, rcv: rcv}, nil
}

// Stats returns the recorder's counters so far.
func (r *Recording) Stats() receiver.RecorderStats { return r.recorder.Stats() }

// Stop lets requests in flight finish (until ctx ends), stops the
// receiver and closes the archive.
func (r *Recording) Stop(ctx context.Context) (Stopped, error) {
	if r.done {
		return Stopped{}, errors.New("recording already stopped")
	}
	r.done = true
	st := Stopped{ShutdownErr: r.rcv.Shutdown(ctx), Stats: r.recorder.Stats()}
	if err := r.archive.Close(); err != nil {
		return st, errors.Join(st.ShutdownErr, fmt.Errorf("close span archive: %w", err))
	}
	ast := r.archive.Stats()
	st.Archive = bundle.Archive{Path: LocalArchive, Records: ast.Records, Spans: st.Stats.Spans, RawBytes: ast.RawBytes, Bytes: ast.WrittenBytes}
	return st, nil
}

// Abort stops the receiver and closes the archive on an error path; it
// does nothing after Stop.
func (r *Recording) Abort(ctx context.Context) {
	if r.done {
		return
	}
	r.done = true
	_ = r.rcv.Shutdown(ctx)
	_ = r.archive.Close()
}

// Sources and Refused are the manifest's view of the counters.
func (s Stopped) Sources(host string) []bundle.Source { return ManifestSources(s.Stats, host) }
func (s Stopped) Refused() []bundle.Refusal           { return manifestRefusals(s.Stats) }
