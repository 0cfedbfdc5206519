package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trace-capture/trace-capture/capture/agent"
	"github.com/trace-capture/trace-capture/capture/journal"
)

// Names of the objects a run creates in its namespace.
const (
	agentName        = "trace-capture-agent"
	agentContainer   = "agent"
	hostRootInPod    = "/host"
	workDirInPod     = "/var/run/trace-capture"
	openShiftSCCRole = "system:openshift:scc:privileged"
)

// newRunID returns a run id: the UTC time and a random suffix, usable as a label value and in a
// namespace name.
func newRunID(now time.Time) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [5]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return now.UTC().Format("20060102t150405") + "-" + string(b[:])
}

// deployment is what a run created in the cluster.
type deployment struct {
	o         *Options
	runID     string
	namespace string
	nsUID     string
	openshift bool
	nodes     []string

	mu      sync.Mutex
	pods    map[string]*corev1.Pod // by node
	clients map[string]*agent.Client
}

func (d *deployment) labels() map[string]string {
	return map[string]string{ManagedByLabel: managedBy, RunLabel: d.runID, "app.kubernetes.io/name": agentName}
}

// deploy creates the namespace, the agents' service account and role, and the DaemonSet on the
// given nodes. What it created is deleted by cleanup, also when it fails half-way.
func deploy(ctx context.Context, o *Options, runID string, nodes []string, openshift bool) (*deployment, error) {
	d := &deployment{o: o, runID: runID, namespace: "trace-capture-" + runID, openshift: openshift, nodes: nodes,
		pods: map[string]*corev1.Pod{}, clients: map[string]*agent.Client{}}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: d.namespace, Labels: map[string]string{
		ManagedByLabel: managedBy, RunLabel: runID,
		"pod-security.kubernetes.io/enforce": "privileged",
		"pod-security.kubernetes.io/audit":   "privileged",
		"pod-security.kubernetes.io/warn":    "privileged",
	}}}
	if openshift {
		ns.Labels["security.openshift.io/scc.podSecurityLabelSync"] = "false"
	}
	created, err := o.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", d.namespace, err)
	}
	d.nsUID = string(created.UID)
	o.Logger.Info("namespace created", "namespace", d.namespace)
	if err := d.createRBAC(ctx); err != nil {
		return d, err
	}
	if _, err := o.Client.AppsV1().DaemonSets(d.namespace).Create(ctx, d.daemonSet(), metav1.CreateOptions{}); err != nil {
		return d, fmt.Errorf("create daemonset %s/%s: %w", d.namespace, agentName, err)
	}
	o.Logger.Info("agents deployed", "namespace", d.namespace, "nodes", len(nodes), "image", o.Image)
	return d, nil
}

// ownerRef makes cluster-scoped objects go with the namespace (garbage collection), in case the
// explicit deletion does not happen.
func (d *deployment) ownerRef() []metav1.OwnerReference {
	if d.nsUID == "" {
		return nil
	}
	return []metav1.OwnerReference{{APIVersion: "v1", Kind: "Namespace", Name: d.namespace, UID: typesUID(d.nsUID)}}
}

func (d *deployment) createRBAC(ctx context.Context) error {
	c := d.o.Client
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: agentName, Namespace: d.namespace, Labels: d.labels()}}
	if _, err := c.CoreV1().ServiceAccounts(d.namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service account %s/%s: %w", d.namespace, agentName, err)
	}
	// The agents need nothing from the API except, once their CLI is gone and nothing is left to
	// undo, deleting their own namespace: one verb on one object.
	cr := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: d.namespace, Labels: d.labels(), OwnerReferences: d.ownerRef()},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, ResourceNames: []string{d.namespace}, Verbs: []string{"get", "delete"}}},
	}
	if _, err := c.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create clusterrole %s: %w", d.namespace, err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: d.namespace, Labels: d.labels(), OwnerReferences: d.ownerRef()},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: d.namespace},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: agentName, Namespace: d.namespace}},
	}
	if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create clusterrolebinding %s: %w", d.namespace, err)
	}
	if d.openshift {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: agentName + "-privileged", Namespace: d.namespace, Labels: d.labels()},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: openShiftSCCRole},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: agentName, Namespace: d.namespace}},
		}
		if _, err := c.RbacV1().RoleBindings(d.namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create rolebinding %s/%s: %w", d.namespace, rb.Name, err)
		}
	}
	return nil
}

func (d *deployment) daemonSet() *appsv1.DaemonSet {
	o := d.o
	t := true
	zero := int64(0)
	grace := int64(300) // the agent restores before it exits
	hostPathDir := corev1.HostPathDirectory
	args := append([]string(nil), o.AgentCommand[1:]...)
	args = append(args,
		"--node-name=$(NODE_NAME)",
		"--namespace=$(POD_NAMESPACE)",
		"--host-root="+hostRootInPod,
		"--proc-root=/proc",
		"--work-dir="+workDirInPod,
		"--listen=127.0.0.1:"+strconv.Itoa(o.AgentPort),
		"--max-bytes="+strconv.FormatInt(o.MaxBytesPerNode, 10),
		"--self-destruct-after="+o.SelfDestructAfter.String(),
	)
	if o.JournalDir != "" {
		args = append(args, "--journal-dir="+o.JournalDir)
	}
	if o.ContainerdEnvFile != "" {
		args = append(args, "--containerd-env-file="+o.ContainerdEnvFile)
	}
	// Scratch space for the archive: the budget plus room for the log.
	sizeLimit := resource.NewQuantity(o.MaxBytesPerNode+64<<20, resource.BinarySI)
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: agentName, Namespace: d.namespace, Labels: d.labels()},
		Spec: appsv1.DaemonSetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: d.labels()},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: d.labels()},
				Spec: corev1.PodSpec{
					ServiceAccountName:            agentName,
					HostNetwork:                   true,
					HostPID:                       true,
					DNSPolicy:                     corev1.DNSClusterFirstWithHostNet,
					TerminationGracePeriodSeconds: &grace,
					Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
						NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{
							Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: d.nodes,
						}}}},
					}}},
					Containers: []corev1.Container{{
						Name:            agentContainer,
						Image:           o.Image,
						ImagePullPolicy: o.ImagePullPolicy,
						Command:         o.AgentCommand[:1],
						Args:            args,
						Env: []corev1.EnvVar{
							{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
							{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
						},
						SecurityContext: &corev1.SecurityContext{Privileged: &t, RunAsUser: &zero},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
						},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "host", MountPath: hostRootInPod},
							{Name: "work", MountPath: workDirInPod},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/", Type: &hostPathDir}}},
						{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: sizeLimit}}},
					},
				},
			},
		},
	}
}

// agentPods lists the run's agent pods, by node (the newest pod of a node wins).
func (d *deployment) agentPods(ctx context.Context) (map[string]*corev1.Pod, error) {
	list, err := d.o.Client.CoreV1().Pods(d.namespace).List(ctx, metav1.ListOptions{LabelSelector: RunLabel + "=" + d.runID})
	if err != nil {
		return nil, fmt.Errorf("list agent pods: %w", err)
	}
	out := map[string]*corev1.Pod{}
	for i := range list.Items {
		p := &list.Items[i]
		if p.Spec.NodeName == "" || p.DeletionTimestamp != nil {
			continue
		}
		if old := out[p.Spec.NodeName]; old == nil || old.CreationTimestamp.Before(&p.CreationTimestamp) {
			out[p.Spec.NodeName] = p
		}
	}
	return out, nil
}

// client returns the agent client of a node, finding its current pod when the one known is gone.
func (d *deployment) client(ctx context.Context, node string) (*agent.Client, error) {
	d.mu.Lock()
	c := d.clients[node]
	d.mu.Unlock()
	if c != nil {
		return c, nil
	}
	return d.redial(ctx, node)
}

// redial forgets the node's client and dials its current pod.
func (d *deployment) redial(ctx context.Context, node string) (*agent.Client, error) {
	pods, err := d.agentPods(ctx)
	if err != nil {
		return nil, err
	}
	p := pods[node]
	if p == nil {
		return nil, fmt.Errorf("no agent pod on node %s", node)
	}
	hc, base, err := d.o.Dialer.Dial(ctx, p, d.o.AgentPort)
	if err != nil {
		return nil, err
	}
	c := &agent.Client{BaseURL: base, HTTP: hc}
	d.mu.Lock()
	d.pods[node], d.clients[node] = p, c
	d.mu.Unlock()
	return c, nil
}

// status reads a node's agent status, dialling again once if the connection or the pod is gone.
func (d *deployment) status(ctx context.Context, node string) (agent.Status, error) {
	c, err := d.client(ctx, node)
	if err != nil {
		return agent.Status{}, err
	}
	st, err := c.Status(ctx)
	if err == nil || ctx.Err() != nil {
		return st, err
	}
	if c, rerr := d.redial(ctx, node); rerr == nil {
		if st, err2 := c.Status(ctx); err2 == nil {
			return st, nil
		}
	}
	return st, err
}

// waitReady waits until every node's agent answers and has finished restoring what an earlier run
// left. On timeout the error names each node that is not ready and why.
func (d *deployment) waitReady(ctx context.Context, timeout time.Duration, poll time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ready := map[string]bool{}
	why := map[string]string{}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		pods, err := d.agentPods(ctx)
		if err != nil && ctx.Err() == nil {
			return err
		}
		for _, n := range d.nodes {
			if ready[n] {
				continue
			}
			p := pods[n]
			switch {
			case p == nil:
				why[n] = "no agent pod"
			case p.Status.Phase != corev1.PodRunning:
				why[n] = "pod " + p.Name + " is " + string(p.Status.Phase) + waitingReason(p)
			case !containerReady(p):
				why[n] = "pod " + p.Name + " is running but not ready" + waitingReason(p)
			default:
				st, err := d.status(ctx, n)
				switch {
				case err != nil:
					why[n] = "pod " + p.Name + " runs but its agent does not answer: " + err.Error()
				case st.Phase == agent.PhaseRecovering:
					why[n] = "the agent is still restoring changes left on the node by an earlier run"
				case st.Phase == agent.PhaseRestoreFailed:
					return fmt.Errorf("node %s holds changes of an earlier run that its agent could not restore (%s): run `%s`",
						n, strings.Join(st.Errors, "; "), strings.Join(d.o.RestoreCommand, " "))
				case st.Phase != agent.PhaseIdle:
					why[n] = "the agent is " + string(st.Phase) + " (run " + st.RunID + ")"
				default:
					ready[n] = true
					delete(why, n)
					d.o.Logger.Info("agent ready", "node", n, "pod", p.Name, "receiver", st.Receiver.GRPC)
				}
			}
		}
		if len(ready) == len(d.nodes) {
			return nil
		}
		d.o.progress(Progress{Step: StepAgents, Message: fmt.Sprintf("%d of %d agents ready", len(ready), len(d.nodes))})
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return fmt.Errorf("wait for the agents: %w", ctx.Err())
			}
			return d.notReadyError(context.WithoutCancel(ctx), timeout, pods, why)
		case <-tick.C:
		}
	}
}

func containerReady(p *corev1.Pod) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == agentContainer {
			return cs.Ready || (cs.State.Running != nil)
		}
	}
	return false
}

func waitingReason(p *corev1.Pod) string {
	var parts []string
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Reason != "" {
			parts = append(parts, c.Reason+": "+c.Message)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			parts = append(parts, w.Reason+": "+w.Message)
		}
		if t := cs.LastTerminationState.Terminated; t != nil {
			parts = append(parts, fmt.Sprintf("last run ended with %s (exit %d): %s", t.Reason, t.ExitCode, strings.TrimSpace(t.Message)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// notReadyError explains, per node, why its agent is not ready, with the namespace's warning
// Events (image pulls, admission, scheduling).
func (d *deployment) notReadyError(ctx context.Context, timeout time.Duration, pods map[string]*corev1.Pod, why map[string]string) error {
	events, _ := d.o.Client.CoreV1().Events(d.namespace).List(ctx, metav1.ListOptions{})
	byObject := map[string][]string{}
	if events != nil {
		sort.Slice(events.Items, func(i, j int) bool { return eventTime(&events.Items[i]).Before(eventTime(&events.Items[j])) })
		for _, e := range events.Items {
			if e.Type != corev1.EventTypeWarning {
				continue
			}
			k := e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name
			msg := e.Reason + ": " + e.Message
			if !containsString(byObject[k], msg) {
				byObject[k] = append(byObject[k], msg)
			}
		}
	}
	var nodes, lines []string
	for _, n := range d.nodes {
		w, ok := why[n]
		if !ok {
			continue
		}
		nodes = append(nodes, n)
		var ev []string
		if p := pods[n]; p != nil {
			ev = byObject["Pod/"+p.Name]
		} else {
			ev = byObject["DaemonSet/"+agentName]
		}
		if len(ev) > 3 {
			ev = ev[len(ev)-3:]
		}
		line := n + ": " + w
		if len(ev) > 0 {
			line += "; events: " + strings.Join(ev, "; ")
		}
		lines = append(lines, line)
	}
	return &AgentsNotReadyError{Nodes: nodes, Timeout: timeout, Details: lines}
}

// AgentsNotReadyError names the nodes whose agents were not ready in time, and why.
type AgentsNotReadyError struct {
	Nodes   []string
	Timeout time.Duration
	Details []string
}

func (e *AgentsNotReadyError) Error() string {
	return fmt.Sprintf("agents not ready after %s on %d node(s) (nothing was changed):\n  %s", e.Timeout, len(e.Nodes), strings.Join(e.Details, "\n  "))
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// cleanup deletes what the run created and verifies that it is gone.
func (d *deployment) cleanup(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := d.o.Client
	var errs []error
	del := func(what string, err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", what, err))
		}
	}
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	// The agents get SIGTERM and stop (they restore first if anything is still applied).
	del("daemonset "+d.namespace+"/"+agentName, c.AppsV1().DaemonSets(d.namespace).Delete(ctx, agentName, opts))
	del("clusterrolebinding "+d.namespace, c.RbacV1().ClusterRoleBindings().Delete(ctx, d.namespace, opts))
	del("clusterrole "+d.namespace, c.RbacV1().ClusterRoles().Delete(ctx, d.namespace, opts))
	del("namespace "+d.namespace, c.CoreV1().Namespaces().Delete(ctx, d.namespace, opts))
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return verifyGone(ctx, d.o, d.namespace)
}

// verifyGone waits until the run's namespace, cluster role and binding are gone.
func verifyGone(ctx context.Context, o *Options, name string) error {
	tick := time.NewTicker(o.pollInterval())
	defer tick.Stop()
	for {
		var left []string
		if _, err := o.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			left = append(left, "namespace "+name)
		}
		if _, err := o.Client.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			left = append(left, "clusterrole "+name)
		}
		if _, err := o.Client.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			left = append(left, "clusterrolebinding "+name)
		}
		if len(left) == 0 {
			o.Logger.Info("everything the run created is gone", "namespace", name)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still present after the deletion: %s (delete them with kubectl, or run `%s`)", strings.Join(left, ", "), strings.Join(o.RestoreCommand, " "))
		case <-tick.C:
		}
	}
}

// journalRef is the annotation value for this run.
func (d *deployment) journalRef(now time.Time) JournalRef {
	dir := d.o.JournalDir
	if dir == "" {
		dir = journal.DefaultDir
	}
	return JournalRef{RunID: d.runID, Dir: dir, Namespace: d.namespace, Since: now.UTC().Format(time.RFC3339)}
}
