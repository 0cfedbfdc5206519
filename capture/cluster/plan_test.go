package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trace-capture/trace-capture/capture/agent/fakenode"
	"github.com/trace-capture/trace-capture/capture/enable"
)

func componentsOf(np *NodePlan) []enable.Component {
	var out []enable.Component
	for _, c := range np.Components {
		out = append(out, c.Component)
	}
	return out
}

func TestDryRunPlanKubeadm(t *testing.T) {
	h := newHarness(t, false,
		testNode{name: "cp-1", cp: true, runtime: fakenode.Containerd2},
		testNode{name: "w-1", runtime: fakenode.CRIO},
	)
	o := h.options(t)
	o.DryRun = true
	res, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	p := res.Plan
	if p.Cluster.Flavour != FlavourStaticPods || p.Cluster.ServerVersion != "v1.37.2" {
		t.Fatalf("cluster %+v", p.Cluster)
	}
	if len(p.Nodes) != 2 || p.Nodes[0].Node != "cp-1" || !p.Nodes[0].ControlPlane {
		t.Fatalf("nodes %+v (control-plane first)", p.Nodes)
	}
	if got, want := componentsOf(&p.Nodes[0]), []enable.Component{enable.Etcd, enable.APIServer, enable.Containerd, enable.Kubelet}; !equalComponents(got, want) {
		t.Fatalf("cp-1 components %v, want %v", got, want)
	}
	if got, want := componentsOf(&p.Nodes[1]), []enable.Component{enable.CRIO, enable.Kubelet}; !equalComponents(got, want) {
		t.Fatalf("w-1 components %v, want %v", got, want)
	}
	etcd := p.Nodes[0].Components[0]
	if etcd.Version != "3.6.16" || etcd.Method != enable.MethodStaticPod {
		t.Fatalf("etcd plan %+v", etcd)
	}
	flags := strings.Join(etcd.Flags, " ")
	for _, want := range []string{"--enable-distributed-tracing=true", "--distributed-tracing-address=" + endpointShown, "--distributed-tracing-sampling-rate=1000000"} {
		if !strings.Contains(flags, want) {
			t.Errorf("etcd flags %q lack %q", flags, want)
		}
	}
	api := p.Nodes[0].Components[1]
	if len(api.Files) != 2 || api.Files[0].Action != "create" || api.Restart.Kind != enable.RestartStaticPod || api.Restart.ExpectedUnavailabilitySeconds == 0 {
		t.Fatalf("apiserver plan %+v", api)
	}
	ctrd := p.Nodes[0].Components[2]
	if ctrd.Method != enable.MethodSystemdDropIn || len(ctrd.Env) == 0 || !ctrd.Restart.DaemonReload {
		t.Fatalf("containerd plan %+v", ctrd)
	}

	// Nothing was created.
	nss, _ := h.client.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	if len(nss.Items) != 0 {
		t.Fatalf("dry run created %d namespaces", len(nss.Items))
	}

	var text bytes.Buffer
	if err := p.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Cluster test: static-pods, Kubernetes v1.37.2",
		"cp-1 (control-plane): kubelet v1.37.2, containerd 2.4.2",
		"edit      /etc/kubernetes/manifests/etcd.yaml",
		"create    /etc/kubernetes/trace-capture-apiserver-tracing.yaml",
		"create    /etc/crio/crio.conf.d/99-trace-capture.conf",
		"Control-plane nodes are changed one at a time",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("plan text lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := p.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Plan
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.SchemaVersion != PlanSchemaVersion || len(back.Nodes) != 2 || back.Nodes[0].Components[0].Flags[0] != etcd.Flags[0] {
		t.Fatalf("JSON round trip: %+v", back)
	}
}

func equalComponents(a, b []enable.Component) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPlanNarrowingAndAlreadyEnabled(t *testing.T) {
	h := newHarness(t, false,
		testNode{name: "cp-1", cp: true},
		testNode{name: "w-1"},
		testNode{name: "w-2"},
	)
	// kube-apiserver already traces (someone's own collector): it is left alone.
	pod, err := h.client.CoreV1().Pods("kube-system").Get(t.Context(), "kube-apiserver-cp-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Spec.Containers[0].Command = append(pod.Spec.Containers[0].Command, "--tracing-config-file=/etc/kubernetes/mine.yaml")
	if _, err := h.client.CoreV1().Pods("kube-system").Update(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w2, _ := h.client.CoreV1().Nodes().Get(t.Context(), "w-2", metav1.GetOptions{})
	w2.Labels["pool"] = "gpu"
	if _, err := h.client.CoreV1().Nodes().Update(t.Context(), w2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	o := h.options(t)
	o.DryRun = true
	o.Components = []enable.Component{enable.APIServer, enable.Kubelet}
	o.NodeSelector = "pool!=gpu"
	res, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Nodes) != 2 || res.Plan.Node("w-2") != nil {
		t.Fatalf("nodes %+v, want cp-1 and w-1", res.Plan.Nodes)
	}
	cp := res.Plan.Node("cp-1")
	if got := componentsOf(cp); !equalComponents(got, []enable.Component{enable.APIServer, enable.Kubelet}) {
		t.Fatalf("cp-1 components %v", got)
	}
	if !cp.Components[0].AlreadyEnabled || !strings.Contains(cp.Components[0].Reason, "tracing-config-file") {
		t.Fatalf("kube-apiserver: %+v", cp.Components[0])
	}
	if got := componentsOf(res.Plan.Node("w-1")); !equalComponents(got, []enable.Component{enable.Kubelet}) {
		t.Fatalf("w-1 components %v", got)
	}
}

func TestPlanOpenShift(t *testing.T) {
	h := newHarness(t, true,
		testNode{name: "master-0", cp: true, runtime: fakenode.CRIO},
		testNode{name: "worker-0", runtime: fakenode.CRIO},
	)
	o := h.options(t)
	o.DryRun = true
	res, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	p := res.Plan
	if p.Cluster.Flavour != FlavourOpenShift || len(p.Notes) < 3 {
		t.Fatalf("flavour %s notes %v", p.Cluster.Flavour, p.Notes)
	}
	for _, n := range p.Nodes {
		if got := componentsOf(&n); !equalComponents(got, []enable.Component{enable.CRIO}) {
			t.Fatalf("%s: components %v, want only crio by default", n.Node, got)
		}
		skipped := map[enable.Component]string{}
		for _, s := range n.Skipped {
			skipped[s.Component] = s.Reason
		}
		if !strings.Contains(skipped[enable.Kubelet], "Machine Config Operator") {
			t.Fatalf("%s: kubelet skip %q", n.Node, skipped[enable.Kubelet])
		}
		if n.ControlPlane && !strings.Contains(skipped[enable.APIServer], "OpenShift") {
			t.Fatalf("%s: apiserver skip %q", n.Node, skipped[enable.APIServer])
		}
	}
	var text bytes.Buffer
	_ = p.WriteText(&text)
	if !strings.Contains(text.String(), "no supported switch for kube-apiserver or etcd tracing") {
		t.Fatalf("plan text:\n%s", text.String())
	}
}

func TestPlanManagedControlPlane(t *testing.T) {
	h := newHarness(t, false, testNode{name: "ip-10-0-0-1"}, testNode{name: "ip-10-0-0-2"})
	o := h.options(t)
	o.DryRun = true
	res, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Plan.Cluster.Flavour != FlavourManaged || !strings.Contains(strings.Join(res.Plan.Notes, " "), "managed control plane") {
		t.Fatalf("flavour %s notes %v", res.Plan.Cluster.Flavour, res.Plan.Notes)
	}
	for _, n := range res.Plan.Nodes {
		if got := componentsOf(&n); !equalComponents(got, []enable.Component{enable.Containerd, enable.Kubelet}) {
			t.Fatalf("%s: %v", n.Node, got)
		}
	}
}

func TestPreflightMissingPermissions(t *testing.T) {
	h := newHarness(t, false, testNode{name: "cp-1", cp: true})
	h.denied["patch nodes"] = true
	h.denied["create daemonsets"] = true
	before := h.snapshots()
	_, err := Run(t.Context(), h.options(t))
	if err == nil {
		t.Fatal("run without permissions succeeded")
	}
	for _, want := range []string{"missing permissions", "patch nodes", "create daemonsets.apps", "RBAC: no rule allows it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	h.assertClean(t)
	h.assertNodesUnchanged(t, before)

	// A dry run shows the same in its notes instead of failing.
	o := h.options(t)
	o.DryRun = true
	res, err := Run(t.Context(), o)
	if err != nil || !strings.Contains(strings.Join(res.Plan.Notes, "\n"), "patch nodes") {
		t.Fatalf("dry run: %v, notes %v", err, res.Plan.Notes)
	}
}
