package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/trace-capture/trace-capture/capture/agent"
)

// RestoreOptions configures Restore (`trace-capture restore`).
type RestoreOptions struct {
	Client kubernetes.Interface
	Config *rest.Config
	// Dialer reaches the agents; nil means port-forwarding with Config.
	Dialer Dialer

	// RunID restricts the restore to one run's nodes and namespaces; "" means every run.
	RunID string
	// Force writes originals back even over files that someone changed since the run wrote them.
	Force bool

	// Image, ImagePullPolicy, AgentCommand, AgentPort, JournalDir and ContainerdEnvFile are as in
	// Options: Restore starts agents on the nodes that hold a journal, and they restore it.
	Image             string
	ImagePullPolicy   corev1.PullPolicy
	AgentCommand      []string
	AgentPort         int
	JournalDir        string
	ContainerdEnvFile string

	AgentTimeout   time.Duration
	RestoreTimeout time.Duration
	CleanupTimeout time.Duration
	RestoreCommand []string

	// Progress, if set, is called at each step; ProgressInterval is also how often the agents are
	// polled (zero: one second).
	Progress         func(Progress)
	ProgressInterval time.Duration
	Abandon          <-chan struct{}
	Logger           *slog.Logger
	Now              func() time.Time

	_ struct{}
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	// Namespaces are earlier runs' namespaces that were deleted (their agents restored their
	// nodes when they stopped).
	Namespaces []string `json:"namespaces,omitempty"`
	// Nodes are the nodes that held a journal reference, with what their agent restored.
	Nodes []NodeResult `json:"nodes,omitempty"`
}

// Restore finishes interrupted runs: it deletes leftover run namespaces (their agents restore
// their nodes before they stop), then starts fresh agents on every node whose journal annotation
// is still set; an agent restores the node's journal when it starts. Nodes verified as restored
// lose the annotation. It is idempotent: with nothing left it does nothing.
func Restore(ctx context.Context, ro RestoreOptions) (*RestoreResult, error) {
	o := Options{
		Client: ro.Client, Config: ro.Config, Dialer: ro.Dialer, DryRun: false,
		Image: ro.Image, ImagePullPolicy: ro.ImagePullPolicy, AgentCommand: ro.AgentCommand, AgentPort: ro.AgentPort,
		JournalDir: ro.JournalDir, ContainerdEnvFile: ro.ContainerdEnvFile,
		AgentTimeout: ro.AgentTimeout, RestoreTimeout: ro.RestoreTimeout, CleanupTimeout: ro.CleanupTimeout,
		RestoreCommand: ro.RestoreCommand, Progress: ro.Progress, ProgressInterval: ro.ProgressInterval, Abandon: ro.Abandon, Logger: ro.Logger, Now: ro.Now,
		Output: "-", SelfDestructAfter: -1,
	}
	if err := o.Complete(); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if o.Dialer == nil {
		pf := NewPortForwardDialer(o.Client, o.Config)
		defer pf.Close()
		o.Dialer = pf
	}
	res := &RestoreResult{}
	sel := ManagedByLabel + "=" + managedBy
	if ro.RunID != "" {
		sel += "," + RunLabel + "=" + ro.RunID
	}
	nss, err := o.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("restore: list the runs' namespaces: %w", err)
	}
	var errs []error
	for _, ns := range nss.Items {
		o.progress(Progress{Step: StepCleanup, Message: "deleting " + ns.Name + " (its agents restore their nodes as they stop)"})
		o.Logger.Info("deleting an earlier run's namespace", "namespace", ns.Name)
		bg := metav1.DeletePropagationBackground
		for _, del := range []func() error{
			func() error {
				return o.Client.RbacV1().ClusterRoleBindings().Delete(ctx, ns.Name, metav1.DeleteOptions{})
			},
			func() error { return o.Client.RbacV1().ClusterRoles().Delete(ctx, ns.Name, metav1.DeleteOptions{}) },
			func() error {
				return o.Client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
			},
		} {
			if err := del(); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete %s: %w", ns.Name, err))
			}
		}
		res.Namespaces = append(res.Namespaces, ns.Name)
	}
	// The old agents restore as they stop (grace period 300 s); a new agent on the same node would
	// not get the control port until they are gone.
	for _, ns := range res.Namespaces {
		wctx, cancel := context.WithTimeout(ctx, max(o.CleanupTimeout, 6*time.Minute))
		err := verifyGone(wctx, &o, ns)
		cancel()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}

	nodes, err := o.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return res, fmt.Errorf("restore: list nodes: %w", err)
	}
	var marked []string
	for _, n := range nodes.Items {
		v, ok := n.Annotations[JournalAnnotation]
		if !ok {
			continue
		}
		var ref JournalRef
		_ = json.Unmarshal([]byte(v), &ref)
		if ro.RunID != "" && ref.RunID != ro.RunID {
			continue
		}
		if ref.Dir != "" && o.JournalDir == "" {
			o.JournalDir = ref.Dir
		}
		marked = append(marked, n.Name)
	}
	sort.Strings(marked)
	if len(marked) == 0 {
		o.Logger.Info("no node holds a journal reference: nothing to restore")
		return res, nil
	}
	if o.Image == "" {
		return res, fmt.Errorf("restore: nodes %s hold a journal: an agent image is needed to restore them", strings.Join(marked, ", "))
	}
	return res, restoreNodes(ctx, &o, marked, ro.Force, res)
}

// restoreNodes starts agents on the nodes; each restores its node's journal when it starts.
func restoreNodes(ctx context.Context, o *Options, nodes []string, force bool, res *RestoreResult) (err error) {
	runID := newRunID(o.Now())
	o.progress(Progress{Step: StepAgents, Message: fmt.Sprintf("starting agents on %d nodes to restore their journals", len(nodes))})
	d, err := deploy(ctx, o, runID, nodes, false)
	if d != nil {
		defer func() {
			if cerr := d.cleanup(context.WithoutCancel(ctx), o.CleanupTimeout); cerr != nil {
				err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
			}
		}()
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.AgentTimeout+o.RestoreTimeout)
	defer cancel()
	var failed []string
	var errs []error
	for _, n := range nodes {
		st, err := waitRecovered(ctx, d, n, o)
		if err == nil && st.Phase == agent.PhaseRestoreFailed && force {
			st, err = forceRestore(ctx, d, n, o)
		}
		nr := NodeResult{Node: n, Phase: st.Phase, Recovered: st.Recovered, Errors: st.Errors}
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("node %s: %w", n, err))
		case st.PendingRecords > 0 || (st.Phase != agent.PhaseIdle && st.Phase != agent.PhaseRestored):
			errs = append(errs, fmt.Errorf("node %s: %d journal records could not be restored: %s", n, st.PendingRecords, strings.Join(st.Errors, "; ")))
		default:
			nr.Restored = true
			if uerr := unannotate(ctx, o, n); uerr != nil {
				errs = append(errs, uerr)
			}
		}
		if !nr.Restored {
			failed = append(failed, n)
		}
		res.Nodes = append(res.Nodes, nr)
	}
	if len(failed) > 0 {
		cmd := strings.Join(o.RestoreCommand, " ")
		if !force {
			cmd += " --force"
		}
		return &RestoreIncompleteError{RunID: runID, Nodes: failed, Command: cmd, Err: errors.Join(errs...)}
	}
	return errors.Join(errs...)
}

// waitRecovered waits until the node's agent finished its start-up restore.
func waitRecovered(ctx context.Context, d *deployment, node string, o *Options) (agent.Status, error) {
	var last error
	for {
		st, err := d.status(ctx, node)
		if err == nil && st.Phase != agent.PhaseRecovering {
			return st, nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return st, fmt.Errorf("the agent did not finish restoring: %w", last)
		case <-o.Abandon:
			return st, errAbandoned
		case <-time.After(o.pollInterval()):
		}
	}
}

func forceRestore(ctx context.Context, d *deployment, node string, o *Options) (agent.Status, error) {
	c, err := d.client(ctx, node)
	if err != nil {
		return agent.Status{}, err
	}
	if _, err := c.Restore(ctx, agent.RestoreRequest{Force: true, Reason: "forced by trace-capture restore --force"}); err != nil {
		return agent.Status{}, err
	}
	for {
		st, err := d.status(ctx, node)
		if err == nil && st.Phase != agent.PhaseRestoring && st.Phase != agent.PhaseRecovering {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-o.Abandon:
			return st, errAbandoned
		case <-time.After(o.pollInterval()):
		}
	}
}
