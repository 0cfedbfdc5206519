package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/trace-capture/trace-capture/capture/agent"
	"github.com/trace-capture/trace-capture/capture/enable"
	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
)

func typesUID(s string) types.UID { return types.UID(s) }

// Result says what a run did.
type Result struct {
	Facts *Facts `json:"facts"`
	Plan  *Plan  `json:"plan"`
	RunID string `json:"runID,omitempty"`
	// Namespace held the agents (it is deleted at the end).
	Namespace string `json:"namespace,omitempty"`
	// Output is the bundle written, Bytes its size.
	Output   string           `json:"output,omitempty"`
	Bytes    int64            `json:"bytes,omitempty"`
	Manifest *bundle.Manifest `json:"-"`
	// Window is when the components were traced.
	WindowStart time.Time `json:"windowStart,omitzero"`
	WindowEnd   time.Time `json:"windowEnd,omitzero"`
	// Interrupted is set when the window was cut short (the bundle has what came until then).
	Interrupted bool `json:"interrupted,omitempty"`
	// Nodes are the agents' final reports: what changed, how it restarted, how it was restored.
	Nodes    []NodeResult `json:"nodes,omitempty"`
	Warnings []string     `json:"warnings,omitempty"`
}

// NodeResult is one node's outcome.
type NodeResult struct {
	Node       string                  `json:"node"`
	Phase      agent.Phase             `json:"phase"`
	Components []agent.ComponentStatus `json:"components,omitempty"`
	// Recovered are changes of an earlier run that the agent restored when it started.
	Recovered []agent.ComponentStatus `json:"recovered,omitempty"`
	// Restored is true once every change on the node was verified as undone.
	Restored bool     `json:"restored"`
	Errors   []string `json:"errors,omitempty"`
}

// run is one capture in progress.
type run struct {
	o     *Options
	facts *Facts
	plan  *Plan
	res   *Result
	runID string
	d     *deployment
	work  string
	log   *slog.Logger
	start time.Time

	mu        sync.Mutex
	final     map[string]agent.Status
	annotated map[string]bool
	enabled   map[string]bool // nodes asked to enable
	abandoned bool
}

var errAbandoned = errors.New("restore abandoned on a second interrupt")

// Run runs a cluster capture (see the package documentation). With DryRun it returns after the
// plan. The returned Result is non-nil whenever the plan was made, also with an error.
func Run(ctx context.Context, opts Options) (*Result, error) {
	o := opts
	if err := o.Complete(); err != nil {
		return nil, fmt.Errorf("cluster capture: %w", err)
	}
	o.progress(Progress{Step: StepPreflight, Message: "reading the cluster"})
	facts, err := Preflight(ctx, &o)
	if err != nil {
		return nil, fmt.Errorf("preflight: %w", err)
	}
	plan := MakePlan(facts, &o)
	res := &Result{Facts: facts, Plan: plan}
	if o.DryRun {
		if err := facts.Check(&o); err != nil {
			plan.Notes = append(plan.Notes, "The run would stop: "+err.Error())
		}
		return res, nil
	}
	if err := facts.Check(&o); err != nil {
		return res, fmt.Errorf("preflight: %w", err)
	}
	if !plan.Changes() {
		return res, errors.New("nothing to switch on: no selected node runs a selected component whose tracing is off (see the plan)")
	}
	if o.Confirm != nil {
		ok, err := o.Confirm(ctx, plan)
		if err != nil {
			return res, err
		}
		if !ok {
			return res, ErrDeclined
		}
	}
	if o.Dialer == nil {
		pf := NewPortForwardDialer(o.Client, o.Config)
		defer pf.Close()
		o.Dialer = pf
	}
	r := &run{o: &o, facts: facts, plan: plan, res: res, runID: newRunID(o.Now()),
		final: map[string]agent.Status{}, annotated: map[string]bool{}, enabled: map[string]bool{}}
	res.RunID = r.runID
	return res, r.run(ctx)
}

func (r *run) run(ctx context.Context) (err error) {
	o := r.o
	r.start = o.Now()
	work, err := os.MkdirTemp(filepath.Dir(o.Output), ".trace-capture-run-*")
	if err != nil {
		return fmt.Errorf("create work folder: %w", err)
	}
	r.work = work
	defer os.RemoveAll(work)
	logFile, err := os.OpenFile(filepath.Join(work, "trace-capture.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create log: %w", err)
	}
	defer logFile.Close()
	r.log = slog.New(slog.NewMultiHandler(o.Logger.Handler(), slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))).With("run", r.runID)
	base := *o
	base.Logger = r.log
	r.o = &base
	o = r.o

	var nodes []string
	for _, n := range r.plan.Nodes {
		if len(n.Components) > 0 {
			nodes = append(nodes, n.Node)
		}
	}
	o.progress(Progress{Step: StepAgents, Message: fmt.Sprintf("starting agents on %d nodes", len(nodes))})
	d, err := deploy(ctx, o, r.runID, nodes, r.facts.Flavour == FlavourOpenShift)
	if d != nil {
		r.d = d
		r.res.Namespace = d.namespace
		defer func() {
			if r.abandoned {
				return
			}
			o.progress(Progress{Step: StepCleanup, Message: "deleting the namespace " + d.namespace})
			if cerr := d.cleanup(context.WithoutCancel(ctx), o.CleanupTimeout); cerr != nil {
				err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
			}
		}()
	}
	if err != nil {
		return err
	}
	if err := d.waitReady(ctx, o.AgentTimeout, o.pollInterval()); err != nil {
		return err
	}
	if err := r.refinePlans(ctx); err != nil {
		return err
	}

	// From here on the nodes may change: the restore is registered before the first change.
	restored := false
	defer func() {
		if restored || r.abandoned {
			return
		}
		if rerr := r.restoreAll(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	if err := r.annotate(ctx); err != nil {
		return err
	}
	o.progress(Progress{Step: StepEnable, Message: "switching tracing on"})
	if err := r.enableAll(ctx); err != nil {
		return err
	}

	r.res.WindowStart = o.Now()
	r.res.Interrupted = r.window(ctx)
	r.res.WindowEnd = o.Now()

	restored = true
	rerr := r.restoreAll(ctx)
	if r.abandoned {
		return rerr
	}
	if rerr == nil {
		r.verifyMirrorPods(context.WithoutCancel(ctx))
	}
	if cerr := r.collect(context.WithoutCancel(ctx)); cerr != nil {
		return errors.Join(rerr, fmt.Errorf("collect: %w", cerr))
	}
	return rerr
}

func (o *Options) pollInterval() time.Duration {
	return max(min(o.ProgressInterval, time.Second), 10*time.Millisecond)
}

// refinePlans asks every agent for its node's exact plan.
func (r *run) refinePlans(ctx context.Context) error {
	var errs []error
	for _, np := range r.plan.Nodes {
		if len(np.Components) == 0 {
			continue
		}
		c, err := r.d.client(ctx, np.Node)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", np.Node, err))
			continue
		}
		exact, err := c.Plan(ctx, r.planRequest(&np))
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", np.Node, err))
			continue
		}
		for _, s := range exact.Skipped {
			if s.Error {
				r.warn(fmt.Sprintf("%s on %s is left out: %s", s.Component, np.Node, s.Reason))
			}
		}
		r.plan.refine(exact)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("plan on the nodes: %w", err)
	}
	if !r.plan.Changes() {
		return errors.New("nothing to switch on once the nodes were checked (see the plan's skipped components)")
	}
	return nil
}

func (r *run) planRequest(np *NodePlan) agent.PlanRequest {
	req := agent.PlanRequest{RunID: r.runID, Components: np.componentList(), SamplingRatePerMillion: r.o.SamplingRatePerMillion,
		Versions: map[enable.Component]string{}}
	if np.KubeletVersion != "" {
		req.Versions[enable.Kubelet] = np.KubeletVersion
	}
	switch np.Runtime {
	case "containerd":
		req.Versions[enable.Containerd] = np.RuntimeVersion
	case "cri-o":
		req.Versions[enable.CRIO] = np.RuntimeVersion
	}
	if nf := r.facts.Node(np.Node); nf != nil {
		if sp := nf.StaticPods[enable.Etcd]; sp != nil && sp.Version != "" && strings.HasPrefix(sp.Version, "3.") {
			req.Versions[enable.Etcd] = sp.Version
		}
	}
	return req
}

func (r *run) warn(s string) {
	r.mu.Lock()
	r.res.Warnings = append(r.res.Warnings, s)
	r.mu.Unlock()
	r.log.Warn(s)
}

// annotate writes the journal reference on every node before anything changes there.
func (r *run) annotate(ctx context.Context) error {
	ref, err := json.Marshal(r.d.journalRef(r.o.Now()))
	if err != nil {
		return err
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{JournalAnnotation: string(ref)}}})
	for _, np := range r.plan.Nodes {
		if len(np.Components) == 0 {
			continue
		}
		if _, err := r.o.Client.CoreV1().Nodes().Patch(ctx, np.Node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("record the journal location on node %s: %w", np.Node, err)
		}
		r.mu.Lock()
		r.annotated[np.Node] = true
		r.mu.Unlock()
	}
	return nil
}

// unannotate removes the journal reference from a node verified as restored.
func unannotate(ctx context.Context, o *Options, node string) error {
	patch := []byte(`{"metadata":{"annotations":{"` + JournalAnnotation + `":null}}}`)
	if _, err := o.Client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("remove the journal location from node %s: %w", node, err)
	}
	return nil
}

// cpAndWorkers splits the nodes with components into control-plane nodes (in order) and workers.
func (r *run) cpAndWorkers() (cp, workers []*NodePlan) {
	for i := range r.plan.Nodes {
		np := &r.plan.Nodes[i]
		if len(np.Components) == 0 {
			continue
		}
		if np.ControlPlane {
			cp = append(cp, np)
		} else {
			workers = append(workers, np)
		}
	}
	return cp, workers
}

// enableAll switches the nodes on: control-plane nodes one at a time, each followed by the API
// server's /readyz, then the workers, Parallel at a time.
func (r *run) enableAll(ctx context.Context) error {
	cp, workers := r.cpAndWorkers()
	// While nodes are being switched on, the dead man's switch of every node already asked is
	// renewed to one node's enable plus the grace: if this process dies now, the agents restore
	// within that. When the window starts it is set to the window plus the grace.
	deadline := r.o.EnableTimeout + r.o.Grace
	kctx, stop := context.WithCancel(ctx)
	defer stop()
	go r.keepAlive(kctx, deadline)
	for _, np := range cp {
		if err := r.enableNode(ctx, np, deadline); err != nil {
			return err
		}
		if err := r.clusterReady(ctx, np.Node); err != nil {
			return err
		}
	}
	return r.parallel(ctx, workers, func(ctx context.Context, np *NodePlan) error {
		return r.enableNode(ctx, np, deadline)
	})
}

// keepAlive renews the deadline of the nodes asked to enable, every third of the grace (at most
// every 30 s), until ctx ends.
func (r *run) keepAlive(ctx context.Context, in time.Duration) {
	every := min(max(r.o.Grace/3, r.o.pollInterval()), 30*time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.mu.Lock()
		var nodes []string
		for n := range r.enabled {
			nodes = append(nodes, n)
		}
		r.mu.Unlock()
		for _, n := range nodes {
			if c, err := r.d.client(ctx, n); err == nil {
				_ = c.SetDeadline(ctx, in)
			}
		}
	}
}

func (r *run) parallel(ctx context.Context, nodes []*NodePlan, f func(context.Context, *NodePlan) error) error {
	sem := make(chan struct{}, r.o.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, np := range nodes {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := f(ctx, np); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// enableNode asks the node's agent to switch its components on and waits until they are.
func (r *run) enableNode(ctx context.Context, np *NodePlan, deadline time.Duration) error {
	o := r.o
	ctx, cancel := context.WithTimeout(ctx, o.EnableTimeout)
	defer cancel()
	req := agent.EnableRequest{PlanRequest: r.planRequest(np), DeadlineIn: agent.Duration(deadline)}
	r.mu.Lock()
	r.enabled[np.Node] = true
	r.mu.Unlock()
	o.progress(Progress{Step: StepEnable, Message: "switching tracing on on " + np.Node})
	var lastErr error
	accepted := false
	for {
		if !accepted {
			c, err := r.d.client(ctx, np.Node)
			if err == nil {
				_, err = c.Enable(ctx, req)
			}
			if err == nil {
				accepted = true
			} else if agent.IsConflict(err) {
				return fmt.Errorf("enable on node %s: %w", np.Node, err)
			} else {
				lastErr = err
				_, _ = r.d.redial(ctx, np.Node)
			}
		}
		if accepted {
			st, err := r.d.status(ctx, np.Node)
			if err == nil {
				r.setFinal(np.Node, st)
				switch st.Phase {
				case agent.PhaseEnabled:
					r.log.Info("node enabled", "node", np.Node)
					return nil
				case agent.PhaseRestored, agent.PhaseRestoreFailed:
					return fmt.Errorf("enable on node %s failed and was undone there: %s", np.Node, strings.Join(st.Errors, "; "))
				}
			} else {
				// The API server restarts while its node is switched on: the port-forward drops.
				lastErr = err
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return fmt.Errorf("enable on node %s: %w", np.Node, ctx.Err())
			}
			if lastErr == nil {
				lastErr = ctx.Err()
			}
			return fmt.Errorf("enable on node %s did not finish within %s: %w", np.Node, o.EnableTimeout, lastErr)
		case <-time.After(o.pollInterval()):
		}
	}
}

// clusterReady waits until the API server answers /readyz (after a control-plane node changed).
func (r *run) clusterReady(ctx context.Context, node string) error {
	ctx, cancel := context.WithTimeout(ctx, r.o.EnableTimeout)
	defer cancel()
	check := r.o.readyz
	if check == nil {
		check = func(ctx context.Context) error {
			rc := r.o.Client.Discovery().RESTClient()
			if rc == nil {
				return nil
			}
			return rc.Get().AbsPath("/readyz").Do(ctx).Error()
		}
	}
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the API server is not ready after node %s changed: %w", node, last)
		case <-time.After(r.o.pollInterval()):
		}
	}
}

func (r *run) setFinal(node string, st agent.Status) {
	r.mu.Lock()
	r.final[node] = st
	r.mu.Unlock()
}

// restoreAll undoes every change: control-plane nodes one at a time (each followed by /readyz),
// then the workers. It runs under its own timeout, whatever ctx says; a closed Abandon stops it.
func (r *run) restoreAll(parent context.Context) error {
	o := r.o
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), o.RestoreTimeout)
	defer cancel()
	if o.Abandon != nil {
		actx, acancel := context.WithCancelCause(ctx)
		defer acancel(nil)
		go func() {
			select {
			case <-o.Abandon:
				acancel(errAbandoned)
			case <-actx.Done():
			}
		}()
		ctx = actx
	}
	o.progress(Progress{Step: StepRestore, Message: "restoring the cluster"})
	cp, workers := r.cpAndWorkers()
	// No agent may restore on its own while another node is being restored: move the deadlines
	// past the restore.
	for _, np := range append(append([]*NodePlan(nil), cp...), workers...) {
		if c, err := r.d.client(ctx, np.Node); err == nil {
			_ = c.SetDeadline(ctx, o.RestoreTimeout+o.Grace)
		}
	}
	var errs []error
	var failed []string
	for _, np := range cp {
		if err := r.restoreNode(ctx, np); err != nil {
			errs = append(errs, err)
			failed = append(failed, np.Node)
			if errors.Is(context.Cause(ctx), errAbandoned) {
				break
			}
			continue
		}
		if r.wasEnabled(np.Node) {
			if err := r.clusterReady(ctx, np.Node); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if !errors.Is(context.Cause(ctx), errAbandoned) {
		var mu sync.Mutex
		perr := r.parallel(ctx, workers, func(ctx context.Context, np *NodePlan) error {
			err := r.restoreNode(ctx, np)
			if err != nil {
				mu.Lock()
				failed = append(failed, np.Node)
				mu.Unlock()
			}
			return err
		})
		errs = append(errs, perr)
	}
	r.collectFinal()
	err := errors.Join(errs...)
	if errors.Is(context.Cause(ctx), errAbandoned) {
		r.abandoned = true
		for _, np := range append(append([]*NodePlan(nil), cp...), workers...) {
			if !containsString(failed, np.Node) && !r.isRestored(np.Node) {
				failed = append(failed, np.Node)
			}
		}
		err = errors.Join(errAbandoned, err)
	}
	if len(failed) == 0 {
		return nil
	}
	sort.Strings(failed)
	return &RestoreIncompleteError{RunID: r.runID, Nodes: failed, Command: o.recoveryCommand(r.runID), Err: err}
}

func (r *run) wasEnabled(node string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.enabled[node]
}

func (r *run) isRestored(node string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.final[node]
	return ok && st.Phase == agent.PhaseRestored && st.PendingRecords == 0
}

// restoreNode asks a node's agent to restore and waits until it verified the restore; then it
// removes the node's journal annotation.
func (r *run) restoreNode(ctx context.Context, np *NodePlan) error {
	o := r.o
	o.progress(Progress{Step: StepRestore, Message: "restoring " + np.Node})
	var lastErr error
	asked := false
	for {
		if !asked {
			c, err := r.d.client(ctx, np.Node)
			if err == nil {
				_, err = c.Restore(ctx, agent.RestoreRequest{Reason: "the window ended"})
			}
			if err == nil {
				asked = true
			} else {
				lastErr = err
				_, _ = r.d.redial(ctx, np.Node)
			}
		}
		if asked {
			st, err := r.d.status(ctx, np.Node)
			if err == nil {
				r.setFinal(np.Node, st)
				switch st.Phase {
				case agent.PhaseRestored:
					if st.PendingRecords == 0 {
						r.log.Info("node restored", "node", np.Node)
						return r.dropAnnotation(ctx, np.Node)
					}
				case agent.PhaseRestoreFailed:
					return fmt.Errorf("restore on node %s incomplete (%d journal records kept on the node): %s", np.Node, st.PendingRecords, strings.Join(st.Errors, "; "))
				case agent.PhaseIdle:
					// A new agent (the old one was replaced) restored the node when it started.
					if st.PendingRecords == 0 && st.RunID == "" {
						r.warn(fmt.Sprintf("%s: the agent was replaced during the run; its successor restored the node when it started", np.Node))
						return r.dropAnnotation(ctx, np.Node)
					}
				}
			} else {
				lastErr = err
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), errAbandoned) {
				return fmt.Errorf("node %s: %w", np.Node, errAbandoned)
			}
			if lastErr == nil {
				lastErr = ctx.Err()
			}
			return fmt.Errorf("restore on node %s not verified within %s (its agent restores on its own at its deadline): %w", np.Node, o.RestoreTimeout, lastErr)
		case <-time.After(o.pollInterval()):
		}
	}
}

func (r *run) dropAnnotation(ctx context.Context, node string) error {
	r.mu.Lock()
	annotated := r.annotated[node]
	r.mu.Unlock()
	if !annotated {
		return nil
	}
	if err := unannotate(ctx, r.o, node); err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.annotated, node)
	r.mu.Unlock()
	return nil
}

// collectFinal fills Result.Nodes from the last statuses.
func (r *run) collectFinal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Nodes = nil
	for _, np := range r.plan.Nodes {
		st, ok := r.final[np.Node]
		if !ok {
			continue
		}
		r.res.Nodes = append(r.res.Nodes, NodeResult{
			Node: np.Node, Phase: st.Phase, Components: st.Components, Recovered: st.Recovered,
			Restored: st.Phase == agent.PhaseRestored && st.PendingRecords == 0, Errors: st.Errors,
		})
	}
}

// verifyMirrorPods checks, from the API, that the control-plane static pods run their original
// command lines again (the agents verified the files by checksum; this is what the kubelet made
// of them). A difference is a warning: the mirror pod may lag behind the kubelet.
func (r *run) verifyMirrorPods(ctx context.Context) {
	type want struct {
		node string
		c    enable.Component
		args []string
	}
	var wants []want
	for _, np := range r.plan.Nodes {
		nf := r.facts.Node(np.Node)
		if nf == nil {
			continue
		}
		for _, cp := range np.Components {
			if sp := nf.StaticPods[cp.Component]; sp != nil && !cp.AlreadyEnabled {
				wants = append(wants, want{np.Node, cp.Component, sp.Args})
			}
		}
	}
	if len(wants) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, max(r.o.EnableTimeout/5, 10*time.Second))
	defer cancel()
	for {
		pods, err := controlPlanePods(ctx, r.o, false)
		var diff []string
		if err != nil {
			diff = append(diff, err.Error())
		}
		for _, w := range wants {
			found := false
			for i := range pods {
				if pods[i].Spec.NodeName != w.node {
					continue
				}
				if sp := staticPodFacts(&pods[i], w.c); sp != nil {
					found = true
					if !slices.Equal(sp.Args, w.args) {
						diff = append(diff, fmt.Sprintf("%s on %s does not run its original command line yet", w.c, w.node))
					}
				}
			}
			if !found {
				diff = append(diff, fmt.Sprintf("the mirror pod of %s on %s is missing", w.c, w.node))
			}
		}
		if len(diff) == 0 {
			r.log.Info("control-plane static pods run their original command lines", "pods", len(wants))
			return
		}
		select {
		case <-ctx.Done():
			for _, d := range diff {
				r.warn(d + " (the files are restored and verified on the node; the mirror pod may lag)")
			}
			return
		case <-time.After(r.o.pollInterval()):
		}
	}
}
