package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/trace-capture/trace-capture/capture/enable"
)

// Flavour is how the cluster's control plane runs.
type Flavour string

// The flavours.
const (
	// FlavourStaticPods: kube-apiserver and etcd are static pods that the kubelet runs from a
	// manifest folder (kubeadm and clusters built like it).
	FlavourStaticPods Flavour = "static-pods"
	// FlavourOpenShift: OpenShift 4.x; operators own the control plane's configuration.
	FlavourOpenShift Flavour = "openshift"
	// FlavourManaged: no control-plane node or pod is visible (EKS, GKE, AKS, hosted control
	// planes): only the nodes' components can be traced.
	FlavourManaged Flavour = "managed"
	// FlavourUnknown: control-plane nodes are visible, but kube-apiserver is not a static pod
	// (k3s, a systemd service, ...): only the nodes' components are traced.
	FlavourUnknown Flavour = "unknown"
)

// Labels, annotations and names that trace-capture puts on objects.
const (
	// ManagedByLabel marks everything a run creates (value "trace-capture").
	ManagedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "trace-capture"
	// RunLabel carries the run id.
	RunLabel = "trace-capture.io/run"
	// JournalAnnotation on a Node says that a run may have changed the node and where its journal
	// is; it is removed once the node is verified as restored.
	JournalAnnotation = "trace-capture.io/journal"
	mirrorAnnotation  = "kubernetes.io/config.mirror"
)

// JournalRef is the value of JournalAnnotation.
type JournalRef struct {
	RunID     string `json:"runID"`
	Dir       string `json:"dir"`
	Namespace string `json:"namespace"`
	Since     string `json:"since"`
}

// StaticPod is a control-plane static pod as its mirror pod shows it.
type StaticPod struct {
	// Pod is "namespace/name" of the mirror pod.
	Pod     string   `json:"pod"`
	Image   string   `json:"image"`
	Version string   `json:"version,omitempty"`
	Args    []string `json:"args"`
	Env     []string `json:"-"`
	// TracingOn says the command line already switches tracing on (then it is left alone).
	TracingOn bool   `json:"tracingOn,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// NodeFacts is one node as the API shows it.
type NodeFacts struct {
	Name           string   `json:"name"`
	Roles          []string `json:"roles,omitempty"`
	ControlPlane   bool     `json:"controlPlane,omitempty"`
	Ready          bool     `json:"ready"`
	Schedulable    bool     `json:"schedulable"`
	OS             string   `json:"os,omitempty"`
	Arch           string   `json:"arch,omitempty"`
	KubeletVersion string   `json:"kubeletVersion"`
	// Runtime is "containerd", "cri-o", ...; RuntimeVersion its version.
	Runtime        string `json:"runtime"`
	RuntimeVersion string `json:"runtimeVersion"`
	// StaticPods are the kube-apiserver and etcd mirror pods on this node.
	StaticPods map[enable.Component]*StaticPod `json:"staticPods,omitempty"`
	// Journal is set when an earlier run's journal annotation is on the node.
	Journal *JournalRef `json:"journal,omitempty"`
	// Selected is false when --nodes excludes the node.
	Selected bool `json:"selected"`
}

// Facts is what the API says about the cluster before anything runs on it.
type Facts struct {
	Flavour          Flavour     `json:"flavour"`
	ServerVersion    string      `json:"serverVersion"`
	OpenShiftVersion string      `json:"openshiftVersion,omitempty"`
	Nodes            []NodeFacts `json:"nodes"`
	// Leftovers are namespaces of earlier runs that still exist.
	Leftovers []string `json:"leftovers,omitempty"`
	// Missing are the permissions the run needs and does not have.
	Missing []string `json:"missingPermissions,omitempty"`
	Notes   []string `json:"notes,omitempty"`
}

// Node returns the facts of a node.
func (f *Facts) Node(name string) *NodeFacts {
	for i := range f.Nodes {
		if f.Nodes[i].Name == name {
			return &f.Nodes[i]
		}
	}
	return nil
}

// Preflight reads what the run needs from the API, changing nothing: the flavour, the server
// version, the nodes and their roles, the kubelet and runtime versions from the node status,
// kube-apiserver and etcd from their mirror pods (image tag and command line, which also show
// whether tracing is on already), earlier runs' leftovers, and the RBAC permissions the run lacks.
func Preflight(ctx context.Context, o *Options) (*Facts, error) {
	f := &Facts{}
	sv, err := o.Client.Discovery().ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("read the server version: %w", err)
	}
	f.ServerVersion = sv.GitVersion
	openshift, err := hasGroup(o, "config.openshift.io")
	if err != nil {
		return nil, fmt.Errorf("read the API groups: %w", err)
	}
	if openshift {
		f.Flavour = FlavourOpenShift
		f.OpenShiftVersion = openShiftVersion(ctx, o)
	}

	sel := labels.Everything()
	if o.NodeSelector != "" {
		if sel, err = labels.Parse(o.NodeSelector); err != nil {
			return nil, fmt.Errorf("node selector %q: %w", o.NodeSelector, err)
		}
	}
	nodes, err := o.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	for _, n := range nodes.Items {
		f.Nodes = append(f.Nodes, nodeFacts(&n, sel.Matches(labels.Set(n.Labels))))
	}

	pods, err := controlPlanePods(ctx, o, openshift)
	if err != nil {
		return nil, err
	}
	anyAPIServer := false
	for _, p := range pods {
		nf := f.Node(p.Spec.NodeName)
		if nf == nil {
			continue
		}
		for _, c := range []enable.Component{enable.APIServer, enable.Etcd} {
			sp := staticPodFacts(&p, c)
			if sp == nil {
				continue
			}
			if nf.StaticPods == nil {
				nf.StaticPods = map[enable.Component]*StaticPod{}
			}
			nf.StaticPods[c] = sp
			nf.ControlPlane = true
			if c == enable.APIServer {
				anyAPIServer = true
			}
		}
	}
	if f.Flavour == "" {
		cpNodes := 0
		for _, n := range f.Nodes {
			if n.ControlPlane {
				cpNodes++
			}
		}
		switch {
		case anyAPIServer:
			f.Flavour = FlavourStaticPods
		case cpNodes == 0:
			f.Flavour = FlavourManaged
		default:
			f.Flavour = FlavourUnknown
		}
	}
	sort.SliceStable(f.Nodes, func(i, j int) bool {
		a, b := f.Nodes[i], f.Nodes[j]
		if a.ControlPlane != b.ControlPlane {
			return a.ControlPlane
		}
		return a.Name < b.Name
	})

	nss, err := o.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: ManagedByLabel + "=" + managedBy})
	if err != nil {
		return nil, fmt.Errorf("list namespaces of earlier runs: %w", err)
	}
	for _, ns := range nss.Items {
		f.Leftovers = append(f.Leftovers, ns.Name)
	}
	sort.Strings(f.Leftovers)

	missing, err := missingPermissions(ctx, o.Client, requiredPermissions(openshift))
	if err != nil {
		return nil, err
	}
	f.Missing = missing
	return f, nil
}

func hasGroup(o *Options, group string) (bool, error) {
	groups, err := o.Client.Discovery().ServerGroups()
	if err != nil {
		return false, err
	}
	for _, g := range groups.Groups {
		if g.Name == group {
			return true, nil
		}
	}
	return false, nil
}

var clusterVersionGVR = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "clusterversions"}

// openShiftVersion reads ClusterVersion "version" (status.desired.version), if it can.
func openShiftVersion(ctx context.Context, o *Options) string {
	if o.Dynamic == nil {
		return ""
	}
	u, err := o.Dynamic.Resource(clusterVersionGVR).Get(ctx, "version", metav1.GetOptions{})
	if err != nil {
		return ""
	}
	desired, _ := u.Object["status"].(map[string]any)["desired"].(map[string]any)
	v, _ := desired["version"].(string)
	return v
}

func nodeFacts(n *corev1.Node, selected bool) NodeFacts {
	nf := NodeFacts{
		Name:           n.Name,
		Schedulable:    !n.Spec.Unschedulable,
		OS:             n.Status.NodeInfo.OperatingSystem,
		Arch:           n.Status.NodeInfo.Architecture,
		KubeletVersion: n.Status.NodeInfo.KubeletVersion,
		Selected:       selected,
	}
	if nf.OS == "" {
		nf.OS = n.Labels["kubernetes.io/os"]
	}
	rt := n.Status.NodeInfo.ContainerRuntimeVersion
	if name, v, ok := strings.Cut(rt, "://"); ok {
		nf.Runtime, nf.RuntimeVersion = name, v
	} else {
		nf.Runtime = rt
	}
	for k := range n.Labels {
		if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
			nf.Roles = append(nf.Roles, r)
			if r == "control-plane" || r == "master" {
				nf.ControlPlane = true
			}
		}
	}
	sort.Strings(nf.Roles)
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			nf.Ready = c.Status == corev1.ConditionTrue
		}
	}
	if v, ok := n.Annotations[JournalAnnotation]; ok {
		var ref JournalRef
		if json.Unmarshal([]byte(v), &ref) != nil {
			ref = JournalRef{RunID: "unknown"}
		}
		nf.Journal = &ref
	}
	return nf
}

// controlPlanePods lists the mirror pods that may be kube-apiserver or etcd.
func controlPlanePods(ctx context.Context, o *Options, openshift bool) ([]corev1.Pod, error) {
	namespaces := []string{"kube-system"}
	if openshift {
		namespaces = append(namespaces, "openshift-kube-apiserver", "openshift-etcd")
	}
	var out []corev1.Pod
	for _, ns := range namespaces {
		pods, err := o.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list control-plane pods in %s: %w", ns, err)
		}
		for _, p := range pods.Items {
			if _, ok := p.Annotations[mirrorAnnotation]; ok {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// staticPodFacts returns the facts of c in a mirror pod, or nil when it is not c's pod.
func staticPodFacts(p *corev1.Pod, c enable.Component) *StaticPod {
	var ctr *corev1.Container
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == string(c) {
			ctr = &p.Spec.Containers[i]
		}
	}
	if ctr == nil && p.Labels["component"] == string(c) && len(p.Spec.Containers) == 1 {
		ctr = &p.Spec.Containers[0]
	}
	if ctr == nil {
		return nil
	}
	sp := &StaticPod{Pod: p.Namespace + "/" + p.Name, Image: ctr.Image}
	sp.Args = append(append([]string(nil), ctr.Command...), ctr.Args...)
	if len(ctr.Args) > 0 && len(ctr.Command) == 0 {
		sp.Args = append([]string(nil), ctr.Args...)
	}
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			sp.Env = append(sp.Env, e.Name+"="+e.Value)
		}
	}
	if v, err := enable.ParseVersion(ctr.Image); err == nil {
		sp.Version = v.String()
	}
	return sp
}

// Check returns an error if the run cannot go on: missing permissions, or leftovers of an earlier
// run that must be restored first.
func (f *Facts) Check(o *Options) error {
	var errs []error
	if len(f.Missing) > 0 {
		errs = append(errs, fmt.Errorf("missing permissions (see docs/rbac.md):\n  %s", strings.Join(f.Missing, "\n  ")))
	}
	if len(f.Leftovers) > 0 {
		errs = append(errs, fmt.Errorf("an earlier run is still in the cluster (namespaces %s): run `%s` first", strings.Join(f.Leftovers, ", "), strings.Join(o.RestoreCommand, " ")))
	}
	var marked []string
	for _, n := range f.Nodes {
		if n.Journal != nil {
			marked = append(marked, n.Name+" (run "+n.Journal.RunID+")")
		}
	}
	if len(marked) > 0 {
		errs = append(errs, fmt.Errorf("nodes %s may hold changes of an earlier run: run `%s` first", strings.Join(marked, ", "), strings.Join(o.RestoreCommand, " ")))
	}
	return errors.Join(errs...)
}
