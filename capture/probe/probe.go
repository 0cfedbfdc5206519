package probe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/trace-capture/trace-capture/capture"
	"github.com/trace-capture/trace-capture/receiver"
	"github.com/trace-capture/trace-capture/receiver/archive"
	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
)

// RequestsFile is the bundle entry listing the probe's requests.
const RequestsFile = "probe/requests.json"

// Defaults for Options fields left zero.
const (
	DefaultDuration = 10 * time.Second
	DefaultRate     = 5
	// DefaultSettle outlasts the 5 s batch delay of the components'
	// span exporters.
	DefaultSettle = 8 * time.Second
)

// Options configures Run.
type Options struct {
	// Config is the caller's client configuration; the caller must be in
	// system:masters or system:monitoring.
	Config *rest.Config
	// Duration is how long requests are sent; Rate how many per second.
	Duration time.Duration
	Rate     float64
	// Requests is the mix, sent round-robin (DefaultRequests if empty).
	Requests []Request
	// Receiver is where the components export to: they must already be
	// configured (at sampling rate 0) to send OTLP to it. In a cluster that
	// is the capture's agent; locally, this receiver.
	Receiver receiver.Config
	// Settle is how long to keep receiving after the last request
	// (DefaultSettle when zero).
	Settle time.Duration
	// Output is the bundle to write.
	Output string
	// ToolVersion goes into the manifest.
	ToolVersion string
	// Logger receives progress; nil discards.
	Logger *slog.Logger
	// OnListening is called once the receiver listens.
	OnListening func(receiver.Addrs)

	_ struct{}
}

// SentRequest is one request the probe sent.
type SentRequest struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
	Verb    string `json:"verb"`
	Method  string `json:"method"`
	Path    string `json:"path"`
	// Status is the HTTP status; 0 when no answer came (Error says why).
	Status   int       `json:"status"`
	Error    string    `json:"error,omitempty"`
	Start    time.Time `json:"start"`
	Duration float64   `json:"duration_ms"`
	// Spans counts the spans of its trace that came back.
	Spans int64 `json:"spans"`
}

// Result says what Run did.
type Result struct {
	Output    string
	Bytes     int64
	Manifest  *bundle.Manifest
	Addrs     receiver.Addrs
	Preflight *Preflight
	Namespace string
	// Requests are the requests sent, in order.
	Requests []SentRequest
	// TracesSeen counts the probe's trace ids found in the archive.
	TracesSeen int
	// ProbeSpans counts the spans of probe traces per service.name;
	// OtherSpans those of any other trace, per service.name.
	ProbeSpans map[string]int64
	OtherSpans map[string]int64
}

// requestsDoc is the content of RequestsFile.
type requestsDoc struct {
	Namespace string        `json:"namespace"`
	Preflight *Preflight    `json:"preflight"`
	Requests  []SentRequest `json:"requests"`
}

// Run checks that probing is possible, sends the requests with sampled
// traceparents, records what comes back and writes a bundle. The scratch
// namespace it creates is deleted whatever happens, under a context that
// ctx's cancellation does not end.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Config == nil {
		return nil, errors.New("probe: no client configuration")
	}
	if opts.Output == "" {
		return nil, errors.New("probe: no output path")
	}
	if err := opts.Receiver.Validate(); err != nil {
		return nil, fmt.Errorf("configure receiver: %w", err)
	}
	if opts.Duration <= 0 {
		opts.Duration = DefaultDuration
	}
	if opts.Rate <= 0 {
		opts.Rate = DefaultRate
	}
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	reqs := opts.Requests
	if len(reqs) == 0 {
		reqs = DefaultRequests()
	}
	if err := ValidateRequests(reqs); err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := rest.CopyConfig(opts.Config)
	cfg.QPS = -1 // the probe paces itself
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client: %w", err)
	}
	pf, err := Check(ctx, client)
	if err != nil {
		return nil, err
	}
	log.Info("probe possible", "apiserver", pf.APIServerVersion, "user", pf.User, "groups", pf.Groups)

	work, err := os.MkdirTemp(filepath.Dir(opts.Output), ".trace-capture-probe-*")
	if err != nil {
		return nil, fmt.Errorf("create work folder: %w", err)
	}
	defer os.RemoveAll(work)
	archivePath := filepath.Join(work, "local"+archive.FileExtension)
	var tly *tally
	rc, err := capture.StartRecording(ctx, capture.RecordingOptions{Receiver: opts.Receiver, ArchivePath: archivePath, Logger: log,
		Wrap: func(next receiver.Sink) receiver.Sink {
			tly = &tally{next: next, traces: map[string]map[string]int64{}}
			return tly
		}})
	if err != nil {
		return nil, err
	}
	defer rc.Abort(context.WithoutCancel(ctx))
	res := &Result{Output: opts.Output, Addrs: rc.Addrs, Preflight: pf}
	if opts.OnListening != nil {
		opts.OnListening(res.Addrs)
	}
	start := time.Now()

	sendErr := send(ctx, client, opts, reqs, log, res)

	// Give the components' batch exporters time to flush.
	if ctx.Err() == nil {
		log.Info("waiting for spans", "settle", opts.Settle)
		t := time.NewTimer(opts.Settle)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	stopped, err := rc.Stop(fctx)
	end := time.Now()
	if err != nil {
		return nil, errors.Join(sendErr, err)
	}
	stats, shutErr := stopped.Stats, stopped.ShutdownErr
	tly.summarize(res)
	log.Info("probe done", "requests", len(res.Requests), "traces_seen", res.TracesSeen, "spans", stats.Spans)

	m := &bundle.Manifest{
		Tool:     bundle.Tool{Name: "trace-capture", Version: opts.ToolVersion},
		Mode:     bundle.ModeLocal,
		Window:   bundle.Window{Start: start.UTC(), End: end.UTC()},
		Sources:  stopped.Sources(""),
		Refused:  stopped.Refused(),
		Archives: []bundle.Archive{stopped.Archive},
	}
	m.Notes = append(m.Notes, fmt.Sprintf("probe: %d requests with sampled traceparents sent as %s to kube-apiserver %s; %d of their traces came back; the requests are listed in %s",
		len(res.Requests), pf.User, pf.APIServerVersion, res.TracesSeen, RequestsFile))
	if sendErr != nil {
		m.Notes = append(m.Notes, "probe stopped early: "+sendErr.Error())
	}
	if shutErr != nil {
		m.Notes = append(m.Notes, "receiver shutdown: "+shutErr.Error())
	}
	if res.TracesSeen == 0 {
		m.Notes = append(m.Notes, "no probe trace came back: are kube-apiserver and etcd configured to export OTLP to "+res.Addrs.GRPC+" (or to an agent that forwards here)?")
	}
	doc, err := json.MarshalIndent(requestsDoc{Namespace: res.Namespace, Preflight: pf, Requests: res.Requests}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode probe requests: %w", err)
	}
	reqPath := filepath.Join(work, "requests.json")
	if err := os.WriteFile(reqPath, append(doc, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write probe requests: %w", err)
	}
	files := []bundle.File{
		{Name: m.Archives[0].Path, Path: archivePath},
		{Name: RequestsFile, Path: reqPath},
	}
	if err := bundle.WriteFile(opts.Output, m, files); err != nil {
		return nil, errors.Join(sendErr, err)
	}
	if fi, err := os.Stat(opts.Output); err == nil {
		res.Bytes = fi.Size()
	}
	res.Manifest = m
	return res, sendErr
}

// send creates the scratch namespace, sends the requests until the window
// ends and deletes the namespace.
func send(ctx context.Context, client kubernetes.Interface, opts Options, reqs []Request, log *slog.Logger, res *Result) (err error) {
	if needsNamespace(reqs) {
		ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			GenerateName: "trace-capture-probe-",
			Labels:       map[string]string{"app.kubernetes.io/managed-by": "trace-capture"},
		}}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create scratch namespace (the mix has writes or %s paths; a mix of reads of other paths needs none): %w", NamespacePlaceholder, err)
		}
		res.Namespace = ns.Name
		log.Info("scratch namespace created", "namespace", ns.Name)
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			cerr := client.CoreV1().ConfigMaps(ns.Name).DeleteCollection(dctx, metav1.DeleteOptions{}, metav1.ListOptions{})
			nerr := client.CoreV1().Namespaces().Delete(dctx, ns.Name, metav1.DeleteOptions{})
			if cerr != nil || nerr != nil {
				err = errors.Join(err, fmt.Errorf("delete scratch namespace %s: %w", ns.Name, errors.Join(cerr, nerr)))
				return
			}
			log.Info("scratch namespace deleted", "namespace", ns.Name)
		}()
	}

	rc := client.CoreV1().RESTClient()
	interval := time.Duration(float64(time.Second) / opts.Rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	window := time.NewTimer(opts.Duration)
	defer window.Stop()
	cm := ""
	for i := 0; ; i++ {
		r := reqs[i%len(reqs)]
		sr, name := sendOne(ctx, rc, res.Namespace, r, i, cm)
		if name != "" || r.Verb == VerbDelete {
			cm = name
		}
		res.Requests = append(res.Requests, sr)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-window.C:
			return nil
		case <-tick.C:
		}
	}
}

// sendOne sends one request with a fresh sampled traceparent. For a
// create it returns the ConfigMap's name; cm is the current one.
func sendOne(ctx context.Context, rc rest.Interface, ns string, r Request, i int, cm string) (SentRequest, string) {
	tid, sid := newID(16), newID(8)
	sr := SentRequest{TraceID: tid, SpanID: sid, Verb: r.Verb}
	cmPath := "/api/v1/namespaces/" + ns + "/configmaps"
	var req *rest.Request
	name := ""
	switch r.Verb {
	case VerbGet, VerbList:
		sr.Method, sr.Path = "GET", strings.ReplaceAll(r.Path, NamespacePlaceholder, ns)
		u, err := url.Parse(sr.Path)
		if err != nil {
			sr.Error = err.Error()
			return sr, ""
		}
		req = rc.Get().AbsPath(u.Path)
		for k, vs := range u.Query() {
			for _, v := range vs {
				req = req.Param(k, v)
			}
		}
	case VerbCreate:
		name = "probe-" + strconv.Itoa(i)
		body, _ := json.Marshal(&corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Data:       map[string]string{"probe": strconv.Itoa(i)},
		})
		sr.Method, sr.Path = "POST", cmPath
		req = rc.Post().AbsPath(cmPath).SetHeader("Content-Type", "application/json").Body(body)
	case VerbPatch, VerbDelete:
		target := cm
		if target == "" {
			target = "probe-none" // nothing created yet: the apiserver answers 404, still traced
		}
		sr.Path = cmPath + "/" + target
		if r.Verb == VerbPatch {
			sr.Method = "PATCH"
			req = rc.Patch(types.MergePatchType).AbsPath(sr.Path).Body([]byte(`{"data":{"patched":"` + strconv.Itoa(i) + `"}}`))
		} else {
			sr.Method = "DELETE"
			req = rc.Delete().AbsPath(sr.Path)
		}
	}
	req = req.SetHeader("traceparent", "00-"+tid+"-"+sid+"-01").Timeout(30 * time.Second)
	sr.Start = time.Now().UTC()
	result := req.Do(ctx)
	sr.Duration = float64(time.Since(sr.Start).Microseconds()) / 1000
	result.StatusCode(&sr.Status)
	if err := result.Error(); err != nil {
		sr.Error = err.Error()
		if r.Verb == VerbCreate {
			name = ""
		}
	}
	return sr, name
}

func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tally passes requests on to the Recorder and counts, for those it
// stored, the spans per trace id and service.
type tally struct {
	next   receiver.Sink
	mu     sync.Mutex
	traces map[string]map[string]int64 // trace id -> service -> spans
}

func (t *tally) Consume(ctx context.Context, req []byte, b receiver.Batch) error {
	// Decode first: req is only valid until Consume returns.
	td, derr := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(req)
	if err := t.next.Consume(ctx, req, b); err != nil {
		return err
	}
	if derr != nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		svc := ""
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok {
			svc = v.AsString()
		}
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				id := ss.At(k).TraceID()
				key := hex.EncodeToString(id[:])
				if t.traces[key] == nil {
					t.traces[key] = map[string]int64{}
				}
				t.traces[key][svc]++
			}
		}
	}
	return nil
}

// CountRefusal passes refusals on, so that the manifest counts them.
func (t *tally) CountRefusal(r receiver.Refusal) {
	if rc, ok := t.next.(receiver.RefusalCounter); ok {
		rc.CountRefusal(r)
	}
}

func (t *tally) summarize(res *Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	res.ProbeSpans, res.OtherSpans = map[string]int64{}, map[string]int64{}
	probe := map[string]bool{}
	for i := range res.Requests {
		r := &res.Requests[i]
		probe[r.TraceID] = true
		for _, n := range t.traces[r.TraceID] {
			r.Spans += n
		}
		if r.Spans > 0 {
			res.TracesSeen++
		}
	}
	ids := make([]string, 0, len(t.traces))
	for id := range t.traces {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		into := res.OtherSpans
		if probe[id] {
			into = res.ProbeSpans
		}
		for svc, n := range t.traces[id] {
			into[svc] += n
		}
	}
}

// needsNamespace says whether the mix writes or names the scratch namespace.
func needsNamespace(reqs []Request) bool {
	for _, r := range reqs {
		if r.Verb != VerbGet && r.Verb != VerbList || strings.Contains(r.Path, NamespacePlaceholder) {
			return true
		}
	}
	return false
}
