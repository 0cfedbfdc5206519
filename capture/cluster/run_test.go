package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trace-capture/trace-capture/capture/agent"
	"github.com/trace-capture/trace-capture/capture/agent/fakenode"
	"github.com/trace-capture/trace-capture/capture/enable"
	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
)

// sendSpans posts one span of service to the OTLP/HTTP receiver of the agent on node.
func sendSpans(t *testing.T, h *harness, node, service string) {
	t.Helper()
	a := h.agentOn(node)
	if a == nil {
		t.Errorf("no agent on %s", node)
		return
	}
	body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":%q}}]},`+
		`"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"x",`+
		`"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}`, service)
	resp, err := http.Post("http://"+a.Receiver().HTTP+"/v1/traces", "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return
	}
	resp.Body.Close()
}

func readBundle(t *testing.T, path string) (*bundle.Manifest, map[string][]byte) {
	t.Helper()
	files := map[string][]byte{}
	m, err := bundle.WalkFile(path, bundle.Limits{}, bundle.WalkFuncs{
		File: func(e *bundle.Entry) error {
			b, err := io.ReadAll(e)
			files[e.Name] = b
			return err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, files
}

func TestRunCapturesAndRestores(t *testing.T) {
	h := newHarness(t, false,
		testNode{name: "cp-1", cp: true, runtime: fakenode.Containerd2},
		testNode{name: "w-1", runtime: fakenode.CRIO},
	)
	before := h.snapshots()
	o := h.options(t)
	var mu sync.Mutex
	var steps []Step
	var windows []Progress
	sent := false
	o.Progress = func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if len(steps) == 0 || steps[len(steps)-1] != p.Step {
			steps = append(steps, p.Step)
		}
		if p.Step == StepWindow {
			windows = append(windows, p)
			if !sent {
				sent = true
				sendSpans(t, h, "cp-1", "apiserver")
				sendSpans(t, h, "cp-1", "etcd")
				sendSpans(t, h, "w-1", "kubelet")
			}
		}
	}
	confirmed := false
	o.Confirm = func(_ context.Context, p *Plan) (bool, error) {
		confirmed = p.Changes()
		return true, nil
	}
	res, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !confirmed {
		t.Fatal("not asked to confirm the plan")
	}
	if want := []Step{StepPreflight, StepAgents, StepEnable, StepWindow, StepRestore, StepCollect, StepCleanup}; !slices.Equal(steps, want) {
		t.Fatalf("steps %v, want %v", steps, want)
	}
	// Control-plane node first, one at a time, behind /readyz.
	if h.readyzN < 2 {
		t.Fatalf("/readyz checked %d times, want after the enable and after the restore of cp-1", h.readyzN)
	}
	if got := h.restarters["cp-1"].calls_(); !slices.Equal(got, []string{"etcd#1", "kube-apiserver#1", "containerd#1", "kubelet#1", "kubelet#2", "containerd#2", "kube-apiserver#2", "etcd#2"}) {
		t.Fatalf("cp-1 restarts %v", got)
	}
	for _, n := range res.Plan.Nodes {
		if n.Source != "node" {
			t.Fatalf("%s: plan not refined on the node", n.Node)
		}
	}
	h.assertNodesUnchanged(t, before)
	h.assertClean(t)
	if len(res.Warnings) != 0 {
		t.Fatalf("warnings %v", res.Warnings)
	}
	for _, n := range res.Nodes {
		if !n.Restored {
			t.Fatalf("%s not restored: %+v", n.Node, n)
		}
	}
	last := windows[len(windows)-1]
	if last.Spans != 3 || len(last.Nodes) != 2 {
		t.Fatalf("last window progress %+v", last)
	}

	m, files := readBundle(t, res.Output)
	if m.Mode != bundle.ModeCluster || len(m.Archives) != 2 || m.TotalSpans() != 3 || *m.SamplingRatePerMillion != 1_000_000 {
		t.Fatalf("manifest %+v", m)
	}
	hosts := map[string]string{}
	for _, s := range m.Sources {
		hosts[s.Service] = s.Host
	}
	if hosts["apiserver"] != "cp-1" || hosts["kubelet"] != "w-1" {
		t.Fatalf("sources %+v", m.Sources)
	}
	for _, a := range m.Archives {
		if a.Truncated {
			t.Fatalf("archive %s truncated", a.Path)
		}
	}
	for _, want := range []string{"logs/agent-cp-1.log", "logs/agent-w-1.log", CLILogFile, EventsFile} {
		if _, ok := files[want]; !ok {
			t.Fatalf("bundle lacks %s (has %v)", want, m.Files)
		}
	}
	var rec ClusterRecord
	if err := json.Unmarshal(m.Cluster, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.RunID != res.RunID || rec.Plan == nil || len(rec.Nodes) != 2 || rec.Facts.Flavour != FlavourStaticPods {
		t.Fatalf("cluster record %+v", rec)
	}
	for _, n := range rec.Nodes {
		for _, c := range n.Components {
			if c.Phase != agent.ComponentRestored || c.Enabled == nil || c.RestoreRestart == nil || len(c.Restored) == 0 {
				t.Fatalf("%s/%s: %+v", n.Node, c.Component, c)
			}
		}
	}
	if !strings.Contains(string(files[CLILogFile]), "node restored") {
		t.Fatalf("CLI log:\n%s", files[CLILogFile])
	}
}

// TestRunEnableFailsOnSecondNode: the worker's kubelet does not come back; the control-plane node,
// switched on first, is restored, and everything is removed.
func TestRunEnableFailsOnSecondNode(t *testing.T) {
	h := newHarness(t, false,
		testNode{name: "cp-1", cp: true},
		testNode{name: "w-1"},
	)
	h.restarters["w-1"].fail = func(c enable.Component, call int) error {
		if c == enable.Kubelet && call == 1 {
			return errors.New("health check GET http://127.0.0.1:10248/healthz: connection refused")
		}
		return nil
	}
	before := h.snapshots()
	res, err := Run(t.Context(), h.options(t))
	if err == nil || !strings.Contains(err.Error(), "w-1") || !strings.Contains(err.Error(), "10248") {
		t.Fatalf("error %v", err)
	}
	var rie *RestoreIncompleteError
	if errors.As(err, &rie) {
		t.Fatalf("restore reported incomplete: %v", err)
	}
	if got := h.restarters["cp-1"].calls_(); !slices.Contains(got, "etcd#2") || !slices.Contains(got, "kube-apiserver#2") {
		t.Fatalf("cp-1 not restored: %v", got)
	}
	h.assertNodesUnchanged(t, before)
	h.assertClean(t)
	if res.Output != "" {
		t.Fatal("a bundle was written for a run that never captured")
	}
}

// TestRunRestoreStepFails: someone edits a file during the window; the restore of that node is
// reported with the recovery command, the other node is restored, the journal is kept; then
// `trace-capture restore --force` finishes.
func TestRunRestoreStepFails(t *testing.T) {
	h := newHarness(t, false,
		testNode{name: "cp-1", cp: true},
		testNode{name: "w-1"},
	)
	before := h.snapshots()
	o := h.options(t)
	o.RestoreCommand = []string{"trace-capture", "restore", "--context", "kind test"}
	edited := false
	o.Progress = func(p Progress) {
		if p.Step == StepWindow && !edited {
			edited = true
			fn := h.nodes["w-1"]
			fn.WriteFile("/var/lib/kubelet/config.yaml", append(fn.ReadFile("/var/lib/kubelet/config.yaml"), "# hand edit\n"...))
		}
	}
	res, err := Run(t.Context(), o)
	var rie *RestoreIncompleteError
	if !errors.As(err, &rie) {
		t.Fatalf("error %v, want a RestoreIncompleteError", err)
	}
	if !slices.Equal(rie.Nodes, []string{"w-1"}) || rie.Command != "trace-capture restore --context 'kind test' --run-id "+res.RunID {
		t.Fatalf("nodes %v command %q", rie.Nodes, rie.Command)
	}
	if !strings.Contains(err.Error(), "/var/lib/kubelet/config.yaml") {
		t.Fatalf("error does not name the file: %v", err)
	}
	h.assertNodesUnchanged(t, before, "w-1")
	if d := fakenode.Diff(before["w-1"], h.nodes["w-1"].Snapshot(journalRoot)); !slices.Equal(d, []string{"changed /var/lib/kubelet/config.yaml"}) {
		t.Fatalf("w-1 differences %v", d)
	}
	if h.pending(t, "w-1") != 1 || h.pending(t, "cp-1") != 0 {
		t.Fatalf("journals: w-1 %d cp-1 %d records", h.pending(t, "w-1"), h.pending(t, "cp-1"))
	}
	// The bundle is written nevertheless, and the node keeps its journal annotation.
	if res.Output == "" || !fileExists(res.Output) {
		t.Fatal("no bundle")
	}
	w1, _ := h.client.CoreV1().Nodes().Get(t.Context(), "w-1", metav1.GetOptions{})
	if _, ok := w1.Annotations[JournalAnnotation]; !ok {
		t.Fatal("w-1 lost its journal annotation although its restore is incomplete")
	}
	cp1, _ := h.client.CoreV1().Nodes().Get(t.Context(), "cp-1", metav1.GetOptions{})
	if _, ok := cp1.Annotations[JournalAnnotation]; ok {
		t.Fatal("cp-1 keeps its journal annotation although it was restored")
	}

	// The operator looks at the edit and decides to put the original back.
	ro := RestoreOptions{Client: h.client, Dialer: h, Image: o.Image, ProgressInterval: 20 * time.Millisecond, RunID: res.RunID, AgentTimeout: 5 * time.Second, RestoreTimeout: 5 * time.Second, CleanupTimeout: 5 * time.Second}
	_, err = Restore(t.Context(), ro)
	if !errors.As(err, &rie) || !strings.Contains(rie.Command, "--force") {
		t.Fatalf("restore without --force: %v", err)
	}
	ro.Force = true
	rres, err := Restore(t.Context(), ro)
	if err != nil {
		t.Fatal(err)
	}
	if len(rres.Nodes) != 1 || !rres.Nodes[0].Restored {
		t.Fatalf("restore result %+v", rres)
	}
	h.assertNodesUnchanged(t, before)
	h.assertClean(t)
}

func TestAgentsNotReady(t *testing.T) {
	h := newHarness(t, false,
		testNode{name: "cp-1", cp: true},
		testNode{name: "w-1", broken: true},
	)
	before := h.snapshots()
	o := h.options(t)
	o.AgentTimeout = 300 * time.Millisecond
	_, err := Run(t.Context(), o)
	var nre *AgentsNotReadyError
	if !errors.As(err, &nre) {
		t.Fatalf("error %v, want AgentsNotReadyError", err)
	}
	if !slices.Equal(nre.Nodes, []string{"w-1"}) {
		t.Fatalf("nodes %v", nre.Nodes)
	}
	for _, want := range []string{"w-1: pod", "ImagePullBackOff", `Failed to pull image "example.com/trace-capture:dev"`, "nothing was changed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	h.assertNodesUnchanged(t, before)
	h.assertClean(t)
}

// TestRunInterrupted: Ctrl-C during the window ends it early; the cluster is restored and the
// bundle holds what came until then.
func TestRunInterrupted(t *testing.T) {
	h := newHarness(t, false, testNode{name: "cp-1", cp: true})
	before := h.snapshots()
	o := h.options(t)
	o.Duration = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	n := 0
	o.Progress = func(p Progress) {
		if p.Step == StepWindow {
			n++
			if n == 1 {
				sendSpans(t, h, "cp-1", "kubelet")
			}
			if n == 3 {
				cancel()
			}
		}
	}
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted {
		t.Fatal("not marked interrupted")
	}
	h.assertNodesUnchanged(t, before)
	h.assertClean(t)
	m, _ := readBundle(t, res.Output)
	if m.TotalSpans() != 1 || !slices.Contains(m.Notes, "the capture window was interrupted before its end") {
		t.Fatalf("manifest spans %d notes %v", m.TotalSpans(), m.Notes)
	}
}

// TestRunAbandoned: a second Ctrl-C while the restore waits stops waiting and returns the
// recovery command; the agents finish the restore on their own.
func TestRunAbandoned(t *testing.T) {
	h := newHarness(t, false, testNode{name: "cp-1", cp: true})
	before := h.snapshots()
	release := make(chan struct{})
	h.restarters["cp-1"].block = release
	o := h.options(t)
	abandon := make(chan struct{})
	o.Abandon = abandon
	o.Progress = func(p Progress) {
		if p.Step == StepRestore && p.Message == "restoring cp-1" {
			go func() {
				time.Sleep(50 * time.Millisecond)
				close(abandon)
			}()
		}
	}
	res, err := Run(t.Context(), o)
	var rie *RestoreIncompleteError
	if !errors.As(err, &rie) || !errors.Is(err, errAbandoned) {
		t.Fatalf("error %v", err)
	}
	if rie.Command != "trace-capture restore --run-id "+res.RunID || !slices.Equal(rie.Nodes, []string{"cp-1"}) {
		t.Fatalf("command %q nodes %v", rie.Command, rie.Nodes)
	}
	// Nothing was cleaned up: the agent is still restoring.
	if _, err := h.client.CoreV1().Namespaces().Get(t.Context(), res.Namespace, metav1.GetOptions{}); err != nil {
		t.Fatalf("namespace: %v", err)
	}
	close(release)
	a := h.agentOn("cp-1")
	for a.Status().Phase != agent.PhaseRestored {
		time.Sleep(2 * time.Millisecond)
	}
	// Then `trace-capture restore` cleans up.
	if _, err := Restore(t.Context(), RestoreOptions{Client: h.client, Dialer: h, Image: o.Image, ProgressInterval: 20 * time.Millisecond, RunID: res.RunID}); err != nil {
		t.Fatal(err)
	}
	h.assertNodesUnchanged(t, before)
	h.assertClean(t)
}

// TestRestoreAfterKilledRun: the CLI was killed with SIGKILL mid-window (no restore, no cleanup)
// and an agent was killed too; `trace-capture restore` deletes the namespace (the surviving agent
// restores as it stops) and starts a new agent where a journal is left, which restores it.
func TestRestoreAfterKilledRun(t *testing.T) {
	h := newHarness(t, false, testNode{name: "cp-1", cp: true}, testNode{name: "w-1"})
	before := h.snapshots()
	o := h.options(t)
	o.Duration = time.Hour
	ctx, kill := context.WithCancel(t.Context())
	var runID string
	killed := make(chan struct{})
	o.Progress = func(p Progress) {
		if p.Step == StepWindow && runID == "" {
			nss, _ := h.client.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
			runID = nss.Items[0].Labels[RunLabel]
			close(killed)
			// SIGKILL: the CLI stops here, forever.
			select {}
		}
	}
	go func() { _, _ = Run(ctx, o) }()
	<-killed
	defer kill()
	// The agent on w-1 dies too, without restoring.
	pods, _ := h.client.CoreV1().Pods("").List(t.Context(), metav1.ListOptions{})
	for _, p := range pods.Items {
		if p.Spec.NodeName == "w-1" {
			h.killPod(p.Name, false)
		}
	}
	if h.pending(t, "w-1") == 0 || h.pending(t, "cp-1") == 0 {
		t.Fatal("the killed run left no journal")
	}
	var progress []string
	res, err := Restore(t.Context(), RestoreOptions{Client: h.client, Dialer: h, Image: o.Image, ProgressInterval: 20 * time.Millisecond,
		Progress: func(p Progress) { progress = append(progress, p.Message) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Namespaces) != 1 || !strings.Contains(res.Namespaces[0], runID) {
		t.Fatalf("namespaces %v", res.Namespaces)
	}
	if len(res.Nodes) != 2 {
		t.Fatalf("nodes %+v", res.Nodes)
	}
	byNode := map[string]NodeResult{}
	for _, n := range res.Nodes {
		byNode[n.Node] = n
	}
	if !byNode["w-1"].Restored || len(byNode["w-1"].Recovered) != 2 {
		t.Fatalf("w-1: %+v (its new agent restores the journal)", byNode["w-1"])
	}
	if !byNode["cp-1"].Restored || len(byNode["cp-1"].Recovered) != 0 {
		t.Fatalf("cp-1: %+v (its agent restored as it stopped)", byNode["cp-1"])
	}
	h.assertNodesUnchanged(t, before)
	h.assertClean(t)
	// Idempotent: a second restore finds nothing to do.
	res, err = Restore(t.Context(), RestoreOptions{Client: h.client, Dialer: h, Image: o.Image, ProgressInterval: 20 * time.Millisecond})
	if err != nil || len(res.Nodes) != 0 || len(res.Namespaces) != 0 {
		t.Fatalf("second restore: %+v %v", res, err)
	}
}

func TestLeftoversStopARun(t *testing.T) {
	h := newHarness(t, false, testNode{name: "cp-1", cp: true})
	patch := []byte(`{"metadata":{"annotations":{"` + JournalAnnotation + `":"{\"runID\":\"old\"}"}}}`)
	if _, err := h.client.CoreV1().Nodes().Patch(t.Context(), "cp-1", "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := Run(t.Context(), h.options(t))
	if err == nil || !strings.Contains(err.Error(), "cp-1 (run old)") || !strings.Contains(err.Error(), "trace-capture restore") {
		t.Fatalf("error %v", err)
	}
}

// TestRunCancelledDuringEnable: Ctrl-C while nodes are being switched on: what was switched on is
// restored, everything is removed, and the error is the interruption (exit 130).
func TestRunCancelledDuringEnable(t *testing.T) {
	h := newHarness(t, false, testNode{name: "cp-1", cp: true}, testNode{name: "w-1"})
	before := h.snapshots()
	o := h.options(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	o.Progress = func(p Progress) {
		if p.Step == StepEnable && p.Message == "switching tracing on on w-1" {
			cancel()
		}
	}
	res, err := Run(ctx, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	var rie *RestoreIncompleteError
	if errors.As(err, &rie) {
		t.Fatalf("restore incomplete: %v", err)
	}
	if res.Output != "" {
		t.Fatal("bundle written for a run interrupted before its window")
	}
	if got := h.restarters["cp-1"].calls_(); !slices.Contains(got, "etcd#2") {
		t.Fatalf("cp-1 not restored: %v", got)
	}
	h.assertNodesUnchanged(t, before)
	h.assertClean(t)
}

func TestDefaultOutput(t *testing.T) {
	got := DefaultOutput("kind-kind/prod", time.Date(2026, 11, 25, 12, 30, 0, 0, time.FixedZone("x", 3600)))
	if got != "trace-capture-kind-kind_prod-20261125T113000Z.tgz" {
		t.Fatalf("got %q", got)
	}
}

// TestRunOpenShift: by default only CRI-O, through a drop-in no operator owns; the agents may use
// the privileged SCC.
func TestRunOpenShift(t *testing.T) {
	h := newHarness(t, true, testNode{name: "master-0", cp: true, runtime: fakenode.CRIO}, testNode{name: "worker-0", runtime: fakenode.CRIO})
	before := h.snapshots()
	var rbs []string
	h.onPod = func(p *corev1.Pod) {
		list, _ := h.client.RbacV1().RoleBindings(p.Namespace).List(context.Background(), metav1.ListOptions{})
		for _, rb := range list.Items {
			rbs = append(rbs, rb.RoleRef.Name)
		}
	}
	res, err := Run(t.Context(), h.options(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rbs, openShiftSCCRole) {
		t.Fatalf("role bindings %v", rbs)
	}
	for _, name := range []string{"master-0", "worker-0"} {
		if got := h.restarters[name].calls_(); !slices.Equal(got, []string{"crio#1", "crio#2"}) {
			t.Fatalf("%s restarts %v", name, got)
		}
	}
	if res.Plan.Cluster.Flavour != FlavourOpenShift {
		t.Fatalf("flavour %s", res.Plan.Cluster.Flavour)
	}
	h.assertNodesUnchanged(t, before)
	h.assertClean(t)
}
