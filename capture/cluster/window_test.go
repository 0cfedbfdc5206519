package cluster

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/trace-capture/trace-capture/capture/agent"
	"github.com/trace-capture/trace-capture/capture/enable"
	"github.com/trace-capture/trace-capture/receiver"
)

// fakeAgents serves statuses whose counters grow with the (fake) clock: kube-apiserver sends 10
// spans a second on cp-1, etcd nothing, and w-1's kubelet stops after 2 minutes.
type fakeAgents struct {
	start     time.Time
	mu        sync.Mutex
	deadlines map[string]time.Duration
}

func (f *fakeAgents) status(_ context.Context, node string) (agent.Status, error) {
	el := time.Since(f.start)
	st := agent.Status{Node: node, Phase: agent.PhaseEnabled, RunID: "run-1"}
	comp := func(c enable.Component) agent.ComponentStatus {
		return agent.ComponentStatus{Component: c, Service: agent.ServiceName(c), Phase: agent.ComponentEnabled}
	}
	switch node {
	case "cp-1":
		n := int64(el/time.Second) * 10
		st.Components = []agent.ComponentStatus{comp(enable.Etcd), comp(enable.APIServer)}
		st.Stats = receiver.RecorderStats{Spans: n, Sources: []receiver.SourceStats{{Service: "apiserver", Spans: n}}}
	case "w-1":
		n := int64(min(el, 2*time.Minute) / time.Second)
		st.Components = []agent.ComponentStatus{comp(enable.Kubelet)}
		st.Stats = receiver.RecorderStats{Spans: n, Sources: []receiver.SourceStats{{Service: "kubelet", Host: "w-1", Spans: n}}}
	}
	return st, nil
}

func (f *fakeAgents) deadline(_ context.Context, node string, in time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deadlines[node] = in
	return nil
}

// TestWindowTakesNoRealTime runs a 10-minute window in a synctest bubble.
func TestWindowTakesNoRealTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeAgents{start: time.Now(), deadlines: map[string]time.Duration{}}
		var progress []Progress
		var warned []string
		start := time.Now()
		interrupted := runWindow(t.Context(), windowParams{
			runID: "run-1", nodes: []string{"cp-1", "w-1"}, duration: 10 * time.Minute, grace: 3 * time.Minute,
			interval: time.Second, silence: time.Minute, parallel: 4,
			status: f.status, deadline: f.deadline,
			progress: func(p Progress) { progress = append(progress, p) },
			warn:     func(s string) { warned = append(warned, s) },
		})
		if interrupted {
			t.Fatal("window reported interrupted")
		}
		if got := time.Since(start); got != 10*time.Minute {
			t.Fatalf("window took %s of fake time", got)
		}
		if f.deadlines["cp-1"] != 13*time.Minute || f.deadlines["w-1"] != 13*time.Minute {
			t.Fatalf("deadlines %v, want window + grace", f.deadlines)
		}
		if n := len(progress); n < 599 || n > 600 {
			t.Fatalf("%d progress reports, want one a second", n)
		}
		at := func(d time.Duration) Progress { return progress[int(d/time.Second)-1] }
		p := at(30 * time.Second)
		if p.Remaining != 9*time.Minute+30*time.Second || p.Spans != 300+30 || p.SpansPerSecond != 11 {
			t.Fatalf("at 30s: remaining %s spans %d rate %v", p.Remaining, p.Spans, p.SpansPerSecond)
		}
		if len(p.Warnings) != 0 {
			t.Fatalf("warnings at 30s: %v", p.Warnings)
		}
		// etcd has sent nothing for a minute.
		p = at(61 * time.Second)
		if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "etcd on cp-1: no span yet") {
			t.Fatalf("warnings at 61s: %v", p.Warnings)
		}
		// The kubelet on w-1 went quiet at 2m.
		p = at(3*time.Minute + 30*time.Second)
		joined := strings.Join(p.Warnings, "\n")
		if !strings.Contains(joined, "kubelet on w-1: no span for 1m30s") {
			t.Fatalf("warnings at 3m30s: %v", p.Warnings)
		}
		if !strings.Contains(strings.Join(warned, "\n"), "etcd on cp-1: no span yet") {
			t.Fatalf("lasting warnings %v", warned)
		}
		for _, w := range warned {
			if strings.Contains(w, "no span for") {
				t.Fatalf("a changing warning went into the result: %q", w)
			}
		}
	})
}

func TestWindowEndsOnInterrupt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeAgents{start: time.Now(), deadlines: map[string]time.Duration{}}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(90*time.Second, cancel)
		start := time.Now()
		interrupted := runWindow(ctx, windowParams{runID: "run-1", nodes: []string{"cp-1"}, duration: time.Hour, interval: time.Second,
			silence: time.Minute, status: f.status, deadline: f.deadline})
		if !interrupted || time.Since(start) != 90*time.Second {
			t.Fatalf("interrupted %v after %s", interrupted, time.Since(start))
		}
	})
}

func TestTrackerWarnsAboutRestartedAgentAndBudget(t *testing.T) {
	start := time.Unix(0, 0)
	tr := newTracker("run-1", start, time.Minute, 1<<20)
	sts := map[string]agent.Status{
		"cp-1": {Phase: agent.PhaseIdle, RunID: ""},
		"w-1": {Phase: agent.PhaseEnabled, RunID: "run-1", Stats: receiver.RecorderStats{
			Refused: []receiver.RefusedStats{{Reason: "budget", Requests: 3, Spans: 1500}}}},
	}
	p := tr.update(start.Add(10*time.Second), time.Minute, []string{"cp-1", "w-1", "w-2"}, sts, map[string]error{"w-2": context.DeadlineExceeded})
	joined := strings.Join(p.Warnings, "\n")
	for _, want := range []string{"cp-1: the agent is idle", "w-1: the span budget of 1048576 bytes is spent: 1500 later spans were dropped", "w-2: the agent does not answer"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q:\n%s", want, joined)
		}
	}
	if len(p.Nodes) != 3 || p.Nodes[2].Error == "" {
		t.Fatalf("nodes %+v", p.Nodes)
	}
}
