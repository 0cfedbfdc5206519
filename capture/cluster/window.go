package cluster

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/trace-capture/trace-capture/capture/agent"
)

// statusSource reads one node's agent status.
type statusSource func(ctx context.Context, node string) (agent.Status, error)

// deadlineSetter moves one node's dead man's switch.
type deadlineSetter func(ctx context.Context, node string, in time.Duration) error

// windowParams is what the window needs; it is separate from run so that tests drive it in a
// synctest bubble with fake agents.
type windowParams struct {
	runID    string
	nodes    []string
	duration time.Duration
	grace    time.Duration
	interval time.Duration
	silence  time.Duration
	budget   int64
	parallel int
	status   statusSource
	deadline deadlineSetter
	progress func(Progress)
	onStatus func(node string, st agent.Status)
	warn     func(string)
}

// runWindow waits for the end of the window or of ctx, polling the agents every interval for the
// progress. It returns true when ctx ended it first. The agents' deadline is set to the window
// plus the grace when it starts.
func runWindow(ctx context.Context, w windowParams) (interrupted bool) {
	start := time.Now()
	for _, n := range w.nodes {
		if err := w.deadline(ctx, n, w.duration+w.grace); err != nil && w.warn != nil {
			w.warn("move the dead man's switch of " + n + ": " + err.Error())
		}
	}
	tr := newTracker(w.runID, start, w.silence, w.budget)
	end := time.NewTimer(w.duration)
	defer end.Stop()
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	warned := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return true
		case <-end.C:
			return false
		case <-tick.C:
		}
		sts, errs := pollAll(ctx, w)
		p := tr.update(time.Now(), w.duration, w.nodes, sts, errs)
		if w.progress != nil {
			w.progress(p)
		}
		if w.warn != nil {
			for _, s := range p.Warnings {
				if !warned[s] && !isTransient(s) {
					warned[s] = true
					w.warn(s)
				}
			}
		}
	}
}

// isTransient tells warnings that change every second (durations) from lasting ones; only the
// latter go into the result.
func isTransient(s string) bool {
	return containsAny(s, "no span for ", "does not answer")
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

func pollAll(ctx context.Context, w windowParams) (map[string]agent.Status, map[string]error) {
	sts := map[string]agent.Status{}
	errs := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(w.parallel, 1))
	for _, n := range w.nodes {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			pctx, cancel := context.WithTimeout(ctx, max(w.interval*5, 5*time.Second))
			defer cancel()
			st, err := w.status(pctx, n)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[n] = err
				return
			}
			sts[n] = st
			if w.onStatus != nil {
				w.onStatus(n, st)
			}
		})
	}
	wg.Wait()
	return sts, errs
}

// window runs the capture window of the run.
func (r *run) window(ctx context.Context) bool {
	cp, workers := r.cpAndWorkers()
	var nodes []string
	for _, np := range append(cp, workers...) {
		nodes = append(nodes, np.Node)
	}
	r.log.Info("window started", "duration", r.o.Duration, "nodes", len(nodes))
	interrupted := runWindow(ctx, windowParams{
		runID: r.runID, nodes: nodes, duration: r.o.Duration, grace: r.o.Grace,
		interval: r.o.ProgressInterval, silence: r.o.SilenceWarning, budget: r.o.MaxBytesPerNode, parallel: 2 * r.o.Parallel,
		status: r.d.status,
		deadline: func(ctx context.Context, node string, in time.Duration) error {
			c, err := r.d.client(ctx, node)
			if err != nil {
				return err
			}
			return c.SetDeadline(ctx, in)
		},
		progress: r.o.Progress,
		onStatus: r.setFinal,
		warn:     r.warn,
	})
	r.log.Info("window ended", "interrupted", interrupted)
	return interrupted
}
