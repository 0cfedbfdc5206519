package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trace-capture/trace-capture/capture"
	"github.com/trace-capture/trace-capture/receiver/archive"
	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
)

// Bundle entries a cluster capture adds besides the span archives.
const (
	EventsFile  = "cluster/events.json"
	CLILogFile  = bundle.LogsDir + "trace-capture.log"
	maxEvents   = 20000
	collectTime = 30 * time.Minute
)

// ClusterRecord is what the bundle's manifest holds about a cluster capture (Manifest.Cluster).
type ClusterRecord struct {
	RunID     string       `json:"runID"`
	Namespace string       `json:"namespace"`
	Facts     *Facts       `json:"facts"`
	Plan      *Plan        `json:"plan"`
	Nodes     []NodeResult `json:"nodes"`
	Warnings  []string     `json:"warnings,omitempty"`
}

// TimelineEvent is a Kubernetes Event of the run, in the bundle's events timeline.
type TimelineEvent struct {
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	Reason    string    `json:"reason"`
	Namespace string    `json:"namespace,omitempty"`
	Kind      string    `json:"kind"`
	Name      string    `json:"name"`
	Message   string    `json:"message"`
	Count     int32     `json:"count,omitempty"`
	Source    string    `json:"source,omitempty"`
}

// countingWriter counts bytes and reports them.
type countingWriter struct {
	w      io.Writer
	n      int64
	report func(int64)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.report != nil {
		c.report(c.n)
	}
	return n, err
}

// collect streams every node's archive and log, gathers the Events of the run and writes the
// bundle.
func (r *run) collect(parent context.Context) error {
	o := r.o
	ctx, cancel := context.WithTimeout(parent, collectTime)
	defer cancel()
	if o.Abandon != nil {
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		defer stop()
		go func() {
			select {
			case <-o.Abandon:
				stop()
			case <-ctx.Done():
			}
		}()
	}
	m := &bundle.Manifest{
		Tool:   bundle.Tool{Name: "trace-capture", Version: o.ToolVersion},
		Mode:   bundle.ModeCluster,
		Window: bundle.Window{Start: r.res.WindowStart.UTC(), End: r.res.WindowEnd.UTC()},
	}
	rate := int64(o.SamplingRatePerMillion)
	m.SamplingRatePerMillion = &rate
	var files []bundle.File
	var total int64
	for _, st := range r.final {
		total += st.Archive.Bytes
	}
	var done int64
	for _, np := range r.plan.Nodes {
		st, ok := r.final[np.Node]
		if !ok {
			continue
		}
		m.Sources = append(m.Sources, capture.ManifestSources(st.Stats, np.Node)...)
		for _, rf := range st.Stats.Refused {
			m.Refused = addRefusal(m.Refused, bundle.Refusal{Reason: string(rf.Reason), Requests: rf.Requests, Spans: rf.Spans, Bytes: rf.Bytes})
		}
		c, err := r.d.client(ctx, np.Node)
		if err != nil {
			m.Notes = append(m.Notes, fmt.Sprintf("the span archive of %s could not be collected: %v", np.Node, err))
			continue
		}
		name := bundle.SpansDir + safeName(np.Node) + archive.FileExtension
		path := filepath.Join(r.work, safeName(np.Node)+archive.FileExtension)
		base := done
		n, closed, err := download(ctx, path, func(w io.Writer) (int64, bool, error) {
			cw := &countingWriter{w: w, report: func(n int64) {
				o.progress(Progress{Step: StepCollect, Message: "collecting " + np.Node, Downloaded: base + n, DownloadTotal: total})
			}}
			return c.Archive(ctx, cw)
		})
		done += n
		if err != nil {
			m.Notes = append(m.Notes, fmt.Sprintf("the span archive of %s could not be collected: %v", np.Node, err))
		} else {
			files = append(files, bundle.File{Name: name, Path: path})
			m.Archives = append(m.Archives, bundle.Archive{Path: name, Host: np.Node, Records: st.Archive.Records, Spans: st.Stats.Spans,
				RawBytes: st.Archive.RawBytes, Bytes: n, Truncated: !closed})
			if !closed {
				m.Notes = append(m.Notes, fmt.Sprintf("the span archive of %s is a snapshot taken while its receiver still ran (the node was not restored): its last record may be cut", np.Node))
			}
		}
		logPath := filepath.Join(r.work, "agent-"+safeName(np.Node)+".log")
		if _, _, err := download(ctx, logPath, func(w io.Writer) (int64, bool, error) { n, err := c.Logs(ctx, w); return n, true, err }); err == nil {
			files = append(files, bundle.File{Name: bundle.LogsDir + "agent-" + safeName(np.Node) + ".log", Path: logPath})
		} else {
			m.Notes = append(m.Notes, fmt.Sprintf("the agent log of %s could not be collected: %v", np.Node, err))
		}
	}
	if ev, err := r.events(ctx); err != nil {
		m.Notes = append(m.Notes, "the Events of the run could not be read: "+err.Error())
	} else if err := writeJSONFile(filepath.Join(r.work, "events.json"), ev); err == nil {
		files = append(files, bundle.File{Name: EventsFile, Path: filepath.Join(r.work, "events.json")})
	}
	if r.res.Interrupted {
		m.Notes = append(m.Notes, "the capture window was interrupted before its end")
	}
	if len(m.Sources) == 0 {
		m.Notes = append(m.Notes, "no spans were received")
	}
	rec := ClusterRecord{RunID: r.runID, Namespace: r.d.namespace, Facts: r.facts, Plan: r.plan, Nodes: r.res.Nodes, Warnings: r.res.Warnings}
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	m.Cluster = raw
	r.log.Info("collected", "archives", len(m.Archives), "spans", m.TotalSpans())
	files = append(files, bundle.File{Name: CLILogFile, Path: filepath.Join(r.work, "trace-capture.log")})
	if err := bundle.WriteFile(o.Output, m, files); err != nil {
		return err
	}
	r.res.Output, r.res.Manifest = o.Output, m
	if fi, err := os.Stat(o.Output); err == nil {
		r.res.Bytes = fi.Size()
	}
	return nil
}

func addRefusal(list []bundle.Refusal, r bundle.Refusal) []bundle.Refusal {
	for i := range list {
		if list[i].Reason == r.Reason {
			list[i].Requests += r.Requests
			list[i].Spans += r.Spans
			list[i].Bytes += r.Bytes
			return list
		}
	}
	return append(list, r)
}

func download(ctx context.Context, path string, get func(io.Writer) (int64, bool, error)) (int64, bool, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, false, err
	}
	n, closed, err := get(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	return n, closed, err
}

// safeName makes a node name usable as a file name (node names are DNS subdomains already).
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] == '.' {
		return "_" + string(b)
	}
	return string(b)
}

// events lists the cluster's Events from the start of the run on, oldest first.
func (r *run) events(ctx context.Context) ([]TimelineEvent, error) {
	var out []TimelineEvent
	cont := ""
	for {
		list, err := r.o.Client.CoreV1().Events("").List(ctx, metav1.ListOptions{Limit: 1000, Continue: cont})
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			e := &list.Items[i]
			t := eventTime(e)
			if t.Before(r.start.Add(-time.Minute)) {
				continue
			}
			out = append(out, timelineEvent(e, t))
		}
		cont = list.Continue
		if cont == "" || len(out) >= maxEvents {
			break
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	if len(out) > maxEvents {
		out = out[len(out)-maxEvents:]
	}
	return out, nil
}

func timelineEvent(e *corev1.Event, t time.Time) TimelineEvent {
	src := e.Source.Component
	if src == "" {
		src = e.ReportingController
	}
	if e.Source.Host != "" {
		src += "@" + e.Source.Host
	}
	return TimelineEvent{Time: t.UTC(), Type: e.Type, Reason: e.Reason, Namespace: e.InvolvedObject.Namespace, Kind: e.InvolvedObject.Kind,
		Name: e.InvolvedObject.Name, Message: e.Message, Count: e.Count, Source: src}
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return errors.Join(os.WriteFile(path, append(b, '\n'), 0o600))
}
