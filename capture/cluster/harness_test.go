package cluster

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/trace-capture/trace-capture/capture/agent"
	"github.com/trace-capture/trace-capture/capture/agent/fakenode"
	"github.com/trace-capture/trace-capture/capture/enable"
)

const journalRoot = "/var/lib/trace-capture"

// fakeRestarter "restarts" a component on a fake node by giving its process a new PID.
type fakeRestarter struct {
	node *fakenode.Node
	// fail, if set, fails the call-th restart of c (1: enable, 2: restore).
	fail func(c enable.Component, call int) error
	// block, if set, is waited for before each restore restart (call 2).
	block chan struct{}

	mu      sync.Mutex
	log     []string
	calls   map[enable.Component]int
	nextPID int
}

func (f *fakeRestarter) Processes(ctx context.Context, c enable.Component) ([]int, error) {
	procs, err := enable.FindProcesses(ctx, f.node.Proc, string(c))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, p := range procs {
		out = append(out, p.PID)
	}
	return out, nil
}

func (f *fakeRestarter) Restart(ctx context.Context, req agent.RestartRequest) (agent.RestartReport, error) {
	f.mu.Lock()
	f.calls[req.Component]++
	n := f.calls[req.Component]
	f.log = append(f.log, fmt.Sprintf("%s#%d", req.Component, n))
	block, fail := f.block, f.fail
	f.mu.Unlock()
	if block != nil && n >= 2 {
		select {
		case <-block:
		case <-ctx.Done():
			return agent.RestartReport{}, ctx.Err()
		}
	}
	if fail != nil {
		if err := fail(req.Component, n); err != nil {
			return agent.RestartReport{Method: "fake"}, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rep := agent.RestartReport{Method: "fake", OldPIDs: req.Before}
	for _, pid := range req.Before {
		f.nextPID++
		f.node.Replace(pid, f.nextPID)
		rep.NewPIDs = append(rep.NewPIDs, f.nextPID)
	}
	return rep, nil
}

func (f *fakeRestarter) calls_() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

// testNode describes a node of the fake cluster.
type testNode struct {
	name    string
	cp      bool
	runtime fakenode.Runtime
	// broken makes the agent pod on the node fail to pull its image.
	broken bool
}

// harness is a fake cluster: a fake clientset, a "DaemonSet controller and kubelet" that run an
// in-process agent on a fake host root for every agent pod, and a Dialer that reaches them
// without sockets.
type harness struct {
	t      *testing.T
	client *fake.Clientset
	dir    string

	mu         sync.Mutex
	nodes      map[string]*fakenode.Node
	specs      map[string]testNode
	restarters map[string]*fakeRestarter
	agents     map[string]*agent.Agent // by pod name
	stops      map[string]context.CancelFunc
	podSeq     int
	readyzN    int
	denied     map[string]bool // "verb resource" denied by RBAC
	// onPod, if set, runs for every agent pod created.
	onPod func(p *corev1.Pod)
}

func newHarness(t *testing.T, openshift bool, nodes ...testNode) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), nodes: map[string]*fakenode.Node{}, specs: map[string]testNode{},
		restarters: map[string]*fakeRestarter{}, agents: map[string]*agent.Agent{}, stops: map[string]context.CancelFunc{}, denied: map[string]bool{}}
	var objs []runtime.Object
	for _, tn := range nodes {
		fn := fakenode.New(t, filepath.Join(h.dir, tn.name), fakenode.Options{Name: tn.name, ControlPlane: tn.cp, Runtime: tn.runtime, Systemd: true})
		h.nodes[tn.name] = fn
		h.specs[tn.name] = tn
		h.restarters[tn.name] = &fakeRestarter{node: fn, calls: map[enable.Component]int{}, nextPID: 9000}
		rt := "containerd://" + fn.Versions["containerd"]
		if tn.runtime == fakenode.CRIO {
			rt = "cri-o://" + fn.Versions["crio"]
		}
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: tn.name, Labels: map[string]string{"kubernetes.io/os": "linux", "kubernetes.io/hostname": tn.name}},
			Status: corev1.NodeStatus{
				NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", ContainerRuntimeVersion: rt, OperatingSystem: "linux", Architecture: "amd64"},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			},
		}
		if tn.cp {
			n.Labels["node-role.kubernetes.io/control-plane"] = ""
			if !openshift {
				objs = append(objs, mirrorPod(t, tn.name, "kube-apiserver", fn.ReadFile("/etc/kubernetes/manifests/kube-apiserver.yaml")),
					mirrorPod(t, tn.name, "etcd", fn.ReadFile("/etc/kubernetes/manifests/etcd.yaml")))
			}
		}
		objs = append(objs, n)
	}
	h.client = fake.NewClientset(objs...)
	disc := h.client.Discovery().(*fakediscovery.FakeDiscovery)
	disc.FakedServerVersion = &version.Info{GitVersion: "v1.37.2", Major: "1", Minor: "37"}
	disc.Resources = []*metav1.APIResourceList{{GroupVersion: "v1"}, {GroupVersion: "apps/v1"}, {GroupVersion: "rbac.authorization.k8s.io/v1"}}
	if openshift {
		disc.Resources = append(disc.Resources, &metav1.APIResourceList{GroupVersion: "config.openshift.io/v1"})
	}
	h.client.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ssar := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		ra := ssar.Spec.ResourceAttributes
		h.mu.Lock()
		denied := h.denied[ra.Verb+" "+ra.Resource]
		h.mu.Unlock()
		out := ssar.DeepCopy()
		out.Status.Allowed = !denied
		if denied {
			out.Status.Reason = "RBAC: no rule allows it"
		}
		return true, out, nil
	})
	h.client.PrependReactor("create", "daemonsets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ds := a.(k8stesting.CreateAction).GetObject().(*appsv1.DaemonSet).DeepCopy()
		go h.runDaemonSet(ds)
		return false, nil, nil
	})
	h.client.PrependReactor("delete", "namespaces", func(a k8stesting.Action) (bool, runtime.Object, error) {
		// The namespace is Terminating until its pods are gone, as in a real cluster.
		ns := a.(k8stesting.DeleteAction).GetName()
		if _, err := h.client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("namespaces"), "", ns); err != nil {
			return true, nil, err
		}
		go h.deleteNamespace(ns)
		return true, nil, nil
	})
	t.Cleanup(h.stopAll)
	return h
}

func mirrorPod(t *testing.T, node, component string, manifest []byte) *corev1.Pod {
	t.Helper()
	var p corev1.Pod
	if err := yaml.Unmarshal(manifest, &p); err != nil {
		t.Fatal(err)
	}
	p.Name = component + "-" + node
	p.Namespace = "kube-system"
	p.Spec.NodeName = node
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations["kubernetes.io/config.mirror"] = "abc"
	p.Annotations["kubernetes.io/config.source"] = "file"
	return &p
}

// runDaemonSet plays the DaemonSet controller and the kubelets: one pod per node in the
// DaemonSet's node affinity, each running an agent on the node's fake root.
func (h *harness) runDaemonSet(ds *appsv1.DaemonSet) {
	nodes := ds.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields[0].Values
	for _, n := range nodes {
		h.startPod(ds, n)
	}
}

func (h *harness) startPod(ds *appsv1.DaemonSet, node string) {
	ctx := context.Background()
	h.mu.Lock()
	h.podSeq++
	name := fmt.Sprintf("%s-%d", ds.Name, h.podSeq)
	spec := h.specs[node]
	fn := h.nodes[node]
	r := h.restarters[node]
	h.mu.Unlock()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ds.Namespace, Labels: ds.Spec.Template.Labels, CreationTimestamp: metav1.NewTime(time.Now().Add(time.Duration(h.podSeq) * time.Millisecond))},
		Spec:       *ds.Spec.Template.Spec.DeepCopy(),
	}
	p.Spec.NodeName = node
	if spec.broken {
		p.Status = corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: agentContainer,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "example.com/trace-capture:dev"`}}}}}
		_, _ = h.client.CoreV1().Pods(ds.Namespace).Create(ctx, p, metav1.CreateOptions{})
		_, _ = h.client.CoreV1().Events(ds.Namespace).Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: name + ".1", Namespace: ds.Namespace},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: name, Namespace: ds.Namespace},
			Type:           corev1.EventTypeWarning, Reason: "Failed",
			Message: `Failed to pull image "example.com/trace-capture:dev": not found`, LastTimestamp: metav1.Now(),
		}, metav1.CreateOptions{})
		return
	}
	a, err := agent.New(agent.Options{NodeName: node, HostRoot: fn.Root, ProcRoot: fn.Proc, WorkDir: filepath.Join(h.dir, "work", name), Restarter: r, Listen: "127.0.0.1:0"})
	if err != nil {
		h.t.Error(err)
		return
	}
	actx, cancel := context.WithCancel(context.Background())
	if err := a.Start(actx); err != nil {
		cancel()
		h.t.Error(err)
		return
	}
	h.mu.Lock()
	h.agents[name], h.stops[name] = a, cancel
	h.mu.Unlock()
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: agentContainer, Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}
	if h.onPod != nil {
		h.onPod(p)
	}
	_, _ = h.client.CoreV1().Pods(ds.Namespace).Create(ctx, p, metav1.CreateOptions{})
}

// deleteNamespace plays the namespace controller: the agents get SIGTERM (and restore what is
// still applied), their pods go.
func (h *harness) deleteNamespace(ns string) {
	pods, _ := h.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	for _, p := range pods.Items {
		h.killPod(p.Name, true)
		_ = h.client.CoreV1().Pods(ns).Delete(context.Background(), p.Name, metav1.DeleteOptions{})
	}
	_ = h.client.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("namespaces"), "", ns)
}

// killPod stops an agent: gracefully (Shutdown, as on SIGTERM) or not (SIGKILL).
func (h *harness) killPod(name string, graceful bool) {
	h.mu.Lock()
	a, cancel := h.agents[name], h.stops[name]
	delete(h.agents, name)
	delete(h.stops, name)
	h.mu.Unlock()
	if a == nil {
		return
	}
	if graceful {
		_ = a.Shutdown(context.Background())
	}
	cancel()
}

func (h *harness) stopAll() {
	h.mu.Lock()
	var names []string
	for n := range h.agents {
		names = append(names, n)
	}
	h.mu.Unlock()
	for _, n := range names {
		h.killPod(n, true)
	}
}

// Dial implements Dialer: requests go straight to the agent's handler.
func (h *harness) Dial(_ context.Context, pod *corev1.Pod, _ int) (*http.Client, string, error) {
	name := pod.Name
	return &http.Client{Transport: roundTripper(func(req *http.Request) (*http.Response, error) {
		h.mu.Lock()
		a := h.agents[name]
		h.mu.Unlock()
		if a == nil {
			return nil, fmt.Errorf("error forwarding port to pod %s: pod not found", name)
		}
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, req)
		return rec.Result(), nil
	})}, "http://" + name, nil
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// options returns Options for a run against the harness.
func (h *harness) options(t *testing.T) Options {
	return Options{
		Client: h.client, Dialer: h, ClusterName: "test",
		Duration: 300 * time.Millisecond, SamplingRatePerMillion: 1_000_000,
		Output: filepath.Join(t.TempDir(), "bundle.tgz"), Image: "example.com/trace-capture:dev",
		AgentTimeout: 5 * time.Second, EnableTimeout: 10 * time.Second, RestoreTimeout: 10 * time.Second, CleanupTimeout: 5 * time.Second,
		ProgressInterval: 20 * time.Millisecond,
		readyz: func(context.Context) error {
			h.mu.Lock()
			h.readyzN++
			h.mu.Unlock()
			return nil
		},
	}
}

func (h *harness) snapshots() map[string]map[string]string {
	out := map[string]map[string]string{}
	for n, fn := range h.nodes {
		out[n] = fn.Snapshot()
	}
	return out
}

func (h *harness) assertNodesUnchanged(t *testing.T, before map[string]map[string]string, except ...string) {
	t.Helper()
	for n, fn := range h.nodes {
		if slices.Contains(except, n) {
			continue
		}
		if d := fakenode.Diff(before[n], fn.Snapshot(journalRoot)); len(d) > 0 {
			t.Errorf("node %s differs from before the run:\n%s", n, strings.Join(d, "\n"))
		}
	}
}

// assertClean checks that nothing the runs created is left in the cluster.
func (h *harness) assertClean(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	nss, _ := h.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	for _, ns := range nss.Items {
		t.Errorf("namespace %s left", ns.Name)
	}
	crs, _ := h.client.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	for _, cr := range crs.Items {
		t.Errorf("clusterrole %s left", cr.Name)
	}
	crbs, _ := h.client.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	for _, crb := range crbs.Items {
		t.Errorf("clusterrolebinding %s left", crb.Name)
	}
	nodes, _ := h.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	for _, n := range nodes.Items {
		if _, ok := n.Annotations[JournalAnnotation]; ok {
			t.Errorf("node %s keeps the journal annotation", n.Name)
		}
	}
}

func (h *harness) pending(t *testing.T, node string) int {
	t.Helper()
	recs, err := enable.Pending(t.Context(), h.nodes[node].Root, "")
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

func (h *harness) agentOn(node string) *agent.Agent {
	h.mu.Lock()
	defer h.mu.Unlock()
	pods, _ := h.client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	for _, p := range pods.Items {
		if p.Spec.NodeName == node {
			if a := h.agents[p.Name]; a != nil {
				return a
			}
		}
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
