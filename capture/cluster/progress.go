package cluster

import (
	"fmt"
	"sort"
	"time"

	"github.com/trace-capture/trace-capture/capture/agent"
	"github.com/trace-capture/trace-capture/capture/enable"
)

// Step is a stage of a run.
type Step string

// The steps, in order.
const (
	StepPreflight Step = "preflight"
	StepAgents    Step = "agents"
	StepEnable    Step = "enable"
	StepWindow    Step = "window"
	StepRestore   Step = "restore"
	StepCollect   Step = "collect"
	StepCleanup   Step = "cleanup"
)

// Progress is a snapshot for the person waiting: the step, a message, and during the window the
// time left and what every node received.
type Progress struct {
	Step    Step   `json:"step"`
	Message string `json:"message,omitempty"`
	// Elapsed and Remaining are the window's.
	Elapsed   time.Duration  `json:"elapsed,omitempty"`
	Remaining time.Duration  `json:"remaining,omitempty"`
	Nodes     []NodeProgress `json:"nodes,omitempty"`
	// Spans, Bytes and DroppedSpans total every node; SpansPerSecond is the rate since the last
	// snapshot.
	Spans          int64   `json:"spans"`
	Bytes          int64   `json:"bytes"`
	DroppedSpans   int64   `json:"droppedSpans"`
	SpansPerSecond float64 `json:"spansPerSecond"`
	// Warnings are things to act on now: a component that sends nothing, an agent that does not
	// answer, a spent budget.
	Warnings []string `json:"warnings,omitempty"`
	// Downloaded and DownloadTotal count the collection's bytes (DownloadTotal may be an estimate).
	Downloaded    int64 `json:"downloaded,omitempty"`
	DownloadTotal int64 `json:"downloadTotal,omitempty"`
}

// NodeProgress is one node's part.
type NodeProgress struct {
	Node         string           `json:"node"`
	Phase        agent.Phase      `json:"phase,omitempty"`
	Sources      []SourceProgress `json:"sources,omitempty"`
	Spans        int64            `json:"spans"`
	Bytes        int64            `json:"bytes"`
	DroppedSpans int64            `json:"droppedSpans"`
	Error        string           `json:"error,omitempty"`
}

// SourceProgress is one component's spans on a node.
type SourceProgress struct {
	Service string `json:"service"`
	Spans   int64  `json:"spans"`
	Dropped int64  `json:"dropped,omitempty"`
}

func (o *Options) progress(p Progress) {
	if o.Progress != nil {
		o.Progress(p)
	}
}

// tracker turns agent statuses into window progress and warnings.
type tracker struct {
	runID   string
	start   time.Time
	silence time.Duration
	budget  int64

	last      map[string]int64     // node/service -> spans
	changed   map[string]time.Time // node/service -> when its count last grew
	prevTotal int64
	prevAt    time.Time
}

func newTracker(runID string, start time.Time, silence time.Duration, budget int64) *tracker {
	return &tracker{runID: runID, start: start, silence: silence, budget: budget,
		last: map[string]int64{}, changed: map[string]time.Time{}, prevAt: start}
}

// update computes the progress at now from the latest statuses (errs: nodes whose agent did not
// answer). duration is the window's length.
func (t *tracker) update(now time.Time, duration time.Duration, nodes []string, sts map[string]agent.Status, errs map[string]error) Progress {
	p := Progress{Step: StepWindow, Elapsed: now.Sub(t.start)}
	p.Remaining = max(duration-p.Elapsed, 0)
	for _, n := range nodes {
		np := NodeProgress{Node: n}
		st, ok := sts[n]
		if err := errs[n]; err != nil {
			np.Error = err.Error()
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s: the agent does not answer: %v", n, err))
		}
		if !ok {
			p.Nodes = append(p.Nodes, np)
			continue
		}
		np.Phase = st.Phase
		byService := map[string]*SourceProgress{}
		for _, s := range st.Stats.Sources {
			sp := byService[s.Service]
			if sp == nil {
				sp = &SourceProgress{Service: s.Service}
				byService[s.Service] = sp
			}
			sp.Spans += s.Spans
			for _, d := range s.Dropped {
				sp.Dropped += d.Spans
			}
		}
		for _, sp := range byService {
			np.Sources = append(np.Sources, *sp)
		}
		sort.Slice(np.Sources, func(i, j int) bool { return np.Sources[i].Service < np.Sources[j].Service })
		np.Spans, np.Bytes, np.DroppedSpans = st.Stats.Spans, st.Archive.Bytes, st.Stats.DroppedSpans
		p.Spans += np.Spans
		p.Bytes += np.Bytes
		p.DroppedSpans += np.DroppedSpans
		if st.RunID != t.runID || (st.Phase != agent.PhaseEnabled && st.Phase != agent.PhaseEnabling) {
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s: the agent is %s (its node is no longer traced: an agent that restarts restores its node first)", n, st.Phase))
		}
		for _, r := range st.Stats.Refused {
			if r.Reason == "budget" {
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s: the span budget of %d bytes is spent: %d later spans were dropped", n, t.budget, r.Spans))
			}
		}
		for _, cs := range st.Components {
			if cs.Phase != agent.ComponentEnabled {
				continue
			}
			key := n + "/" + cs.Service
			got := int64(0)
			if sp := byService[cs.Service]; sp != nil {
				got = sp.Spans
			}
			prev, seen := t.last[key]
			switch {
			case !seen && got == 0:
				t.changed[key] = t.start
			case !seen || got > prev:
				t.changed[key] = now
			}
			t.last[key] = max(got, prev)
			if since := now.Sub(t.changed[key]); since >= t.silence {
				what := "no span yet"
				if got > 0 {
					what = "no span for " + since.Round(time.Second).String()
				}
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s on %s: %s (%s)", componentName(cs.Component), n, what, silenceHint(cs.Component)))
			}
		}
		p.Nodes = append(p.Nodes, np)
	}
	if dt := now.Sub(t.prevAt).Seconds(); dt > 0 {
		p.SpansPerSecond = float64(p.Spans-t.prevTotal) / dt
	}
	t.prevTotal, t.prevAt = p.Spans, now
	return p
}

func componentName(c enable.Component) string { return string(c) }

func silenceHint(c enable.Component) string {
	switch c {
	case enable.Etcd:
		return "etcd only traces requests whose parent was sampled and its own sampled roots; is the API server busy?"
	case enable.Kubelet, enable.Containerd, enable.CRIO:
		return "a quiet node: start or delete a pod on it to see node-side traces"
	}
	return "is it receiving requests?"
}
