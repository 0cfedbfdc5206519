package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/trace-capture/trace-capture/capture/enable"
	"github.com/trace-capture/trace-capture/capture/journal"
	"github.com/trace-capture/trace-capture/receiver"
	"github.com/trace-capture/trace-capture/receiver/archive"
)

// File names in the work folder.
const (
	ArchiveFile = "spans" + archive.FileExtension
	LogFile     = "agent.log"
)

// Options configures an Agent. Only WorkDir is required.
type Options struct {
	// NodeName is the node the agent runs on (the pod's spec.nodeName).
	NodeName string
	// HostRoot is where the node's root file system is mounted ("/host"); "" means "/".
	HostRoot string
	// ProcRoot is the node's proc file system; "" means HostRoot + "/proc". Signals go to its PIDs,
	// so the pod needs hostPID.
	ProcRoot string
	// JournalDir is the node path of the journal; "" means journal.DefaultDir. It is outside every
	// folder whose files a component loads.
	JournalDir string
	// WorkDir holds the span archive and the agent's log (an emptyDir in the pod).
	WorkDir string
	// Listen is the control API's address; "" means 127.0.0.1:DefaultPort. It must be loopback.
	Listen string
	// MaxBytes is the span archive's byte budget; past it spans are refused and counted. Zero
	// means no budget.
	MaxBytes int64
	// MaxRequestBytes bounds one OTLP request; zero means receiver.DefaultMaxRequestBytes.
	MaxRequestBytes int
	// ContainerdEnvFile is the environment file that containerd's supervisor reads, for a
	// containerd 2.x that systemd does not run.
	ContainerdEnvFile string
	// RestartTimeout bounds one component restart; zero means 3 minutes.
	RestartTimeout time.Duration
	// ShutdownTimeout bounds the restore when the agent is stopped; zero means 4 minutes (keep it
	// below the pod's termination grace period).
	ShutdownTimeout time.Duration
	// Restarter restarts components; nil means a HostRestarter on HostRoot and ProcRoot.
	Restarter Restarter

	// Client, Namespace and SelfDestructAfter let an agent whose CLI is gone clean up: once
	// nothing is applied, the journal is empty and no control request came for SelfDestructAfter,
	// it deletes its namespace (which holds it). Zero SelfDestructAfter or a nil Client disables it.
	Client            kubernetes.Interface
	Namespace         string
	SelfDestructAfter time.Duration

	// Logger receives lifecycle messages (they also go to the agent's log file); nil: only the file.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnListening is called with the control API's address once it listens (Run only).
	OnListening func(addr string)

	// noReceiver, in tests inside a synctest bubble (where sockets would stop the fake clock),
	// leaves the receiver unstarted; components are told to export to 127.0.0.1:4317.
	noReceiver bool

	_ struct{}
}

// Agent is the node side of a cluster capture. Its lifecycle is New, Start, (requests through
// Handler), Shutdown.
type Agent struct {
	opts      Options
	node      nodeView
	restarter Restarter
	log       *slog.Logger
	logFile   *os.File
	now       func() time.Time

	aw  *archive.Writer
	rec *receiver.Recorder
	rcv *receiver.Receiver

	baseCtx    context.Context
	baseCancel context.CancelFunc
	wg         sync.WaitGroup

	opMu sync.Mutex // serialises enable, restore and recovery

	mu            sync.Mutex
	phase         Phase
	runID         string
	comps         []ComponentStatus
	recovered     []ComponentStatus
	errs          []string
	restoreReason string
	pending       int
	deadline      time.Time
	deadlineSet   chan struct{}
	lastContact   time.Time
	enableCancel  context.CancelFunc
	restoreDone   chan struct{} // closed when the current restore ends
	archiveClosed bool
	stopped       bool
	destructed    bool
}

// New checks the options, creates the work folder's files and the receiver (not yet listening).
func New(opts Options) (*Agent, error) {
	if opts.WorkDir == "" {
		return nil, errors.New("create agent: no work folder")
	}
	if opts.HostRoot == "" {
		opts.HostRoot = "/"
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = filepath.Join(opts.HostRoot, "proc")
	}
	if opts.JournalDir == "" {
		opts.JournalDir = journal.DefaultDir
	}
	if err := journal.CheckNodePath(opts.JournalDir); err != nil {
		return nil, fmt.Errorf("create agent: journal folder: %w", err)
	}
	if opts.ContainerdEnvFile != "" {
		if err := journal.CheckNodePath(opts.ContainerdEnvFile); err != nil {
			return nil, fmt.Errorf("create agent: containerd environment file: %w", err)
		}
	}
	if opts.Listen == "" {
		opts.Listen = fmt.Sprintf("127.0.0.1:%d", DefaultPort)
	}
	if err := checkLoopback(opts.Listen); err != nil {
		return nil, fmt.Errorf("create agent: %w", err)
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 4 * time.Minute
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(opts.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("create agent: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(opts.WorkDir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create agent: log file: %w", err)
	}
	log := teeLogger(opts.Logger, lf).With("node", opts.NodeName)
	maxReq := opts.MaxRequestBytes
	if maxReq <= 0 {
		maxReq = receiver.DefaultMaxRequestBytes
	}
	aw, err := archive.Create(filepath.Join(opts.WorkDir, ArchiveFile), archive.WriterOptions{MaxRecordSize: maxReq})
	if err != nil {
		lf.Close()
		return nil, fmt.Errorf("create agent: %w", err)
	}
	rec := receiver.NewRecorder(aw, receiver.RecorderOptions{MaxBytes: opts.MaxBytes})
	rcv, err := receiver.New(receiver.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", MaxRequestBytes: maxReq}, rec, receiver.Options{Logger: log})
	if err != nil {
		aw.Close()
		lf.Close()
		return nil, fmt.Errorf("create agent: %w", err)
	}
	r := opts.Restarter
	if r == nil {
		r = &HostRestarter{HostRoot: opts.HostRoot, ProcRoot: opts.ProcRoot, Timeout: opts.RestartTimeout, Logger: log}
	}
	a := &Agent{
		opts:        opts,
		node:        nodeView{hostRoot: opts.HostRoot, procRoot: opts.ProcRoot, node: opts.NodeName, containerdEnvFile: opts.ContainerdEnvFile},
		restarter:   r,
		log:         log,
		logFile:     lf,
		now:         now,
		aw:          aw,
		rec:         rec,
		rcv:         rcv,
		phase:       PhaseRecovering,
		deadlineSet: make(chan struct{}, 1),
	}
	return a, nil
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("control address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("control address %q is not a loopback address", addr)
	}
	return nil
}

// Start starts the receiver, then restores whatever an earlier agent left in the journal (in the
// background: Status says PhaseRecovering until it is done), and arms the background loops. ctx
// bounds the agent's work; cancelling it is the same as Shutdown without waiting.
func (a *Agent) Start(ctx context.Context) error {
	if !a.opts.noReceiver {
		if err := a.rcv.Start(ctx); err != nil {
			return fmt.Errorf("start agent: %w", err)
		}
	}
	a.baseCtx, a.baseCancel = context.WithCancel(ctx)
	a.mu.Lock()
	a.lastContact = a.now()
	a.mu.Unlock()
	addrs := a.Receiver()
	a.log.Info("agent started", "grpc", addrs.GRPC, "http", addrs.HTTP, "journal", a.opts.JournalDir, "max_bytes", a.opts.MaxBytes)
	a.wg.Go(a.recover)
	a.wg.Go(a.deadlineLoop)
	if a.opts.Client != nil && a.opts.Namespace != "" && a.opts.SelfDestructAfter > 0 {
		a.wg.Go(a.selfDestructLoop)
	}
	return nil
}

// Receiver returns the OTLP addresses the components export to.
func (a *Agent) Receiver() receiver.Addrs {
	if a.opts.noReceiver {
		return receiver.Addrs{GRPC: "127.0.0.1:4317", HTTP: "127.0.0.1:4318"}
	}
	return a.rcv.Addrs()
}

// recover restores journal records left on the node by an earlier agent.
func (a *Agent) recover() {
	a.opMu.Lock()
	defer a.opMu.Unlock()
	ctx := a.baseCtx
	recs, err := enable.Pending(ctx, a.opts.HostRoot, a.opts.JournalDir)
	if err == nil && len(recs) == 0 {
		a.setPhase(PhaseIdle)
		return
	}
	if err != nil {
		a.addError(fmt.Errorf("read the journal: %w", err))
	}
	a.log.Warn("restoring changes left on the node by an earlier agent", "records", len(recs))
	a.mu.Lock()
	a.restoreReason = "recovery of records left by an earlier agent"
	a.mu.Unlock()
	statuses, rerr := a.restoreRecords(context.WithoutCancel(ctx), false)
	left, _ := enable.Pending(context.WithoutCancel(ctx), a.opts.HostRoot, a.opts.JournalDir)
	a.mu.Lock()
	a.recovered = statuses
	a.pending = len(left)
	a.mu.Unlock()
	if rerr != nil || err != nil || len(left) > 0 {
		if rerr != nil {
			a.addError(fmt.Errorf("recover: %w", rerr))
		}
		// The node is not in a state a capture may start from; the receiver keeps running for
		// components that may still export.
		a.setPhase(PhaseRestoreFailed)
		return
	}
	a.log.Info("changes left by an earlier agent restored", "records", len(recs))
	a.setPhase(PhaseIdle)
}

// Plan returns the node's plans for req; it changes nothing.
func (a *Agent) Plan(ctx context.Context, req PlanRequest) (NodePlan, error) {
	if err := req.Validate(); err != nil {
		return NodePlan{}, fmt.Errorf("plan: %w", err)
	}
	specs, skips := a.node.specs(ctx, req, a.target(req))
	np := NodePlan{Node: a.opts.NodeName, Skipped: skips}
	for _, cs := range specs {
		p, err := enable.BuildPlan(ctx, a.opts.HostRoot, cs.spec)
		if err != nil {
			np.Skipped = append(np.Skipped, Skip{Component: cs.spec.Component, Reason: err.Error(), Error: true})
			continue
		}
		np.Plans = append(np.Plans, p)
	}
	return np, nil
}

func (a *Agent) target(req PlanRequest) enable.Target {
	addrs := a.Receiver()
	return enable.Target{
		Endpoint:               addrs.GRPC,
		HTTPEndpoint:           addrs.HTTP,
		SamplingRatePerMillion: req.SamplingRatePerMillion,
		ServiceInstanceID:      a.opts.NodeName,
	}
}

// ErrConflict is returned (wrapped) for a request that the agent's phase does not allow.
var ErrConflict = errors.New("not possible now")

// Enable starts switching the components on, in the background; Status follows it. A repeated
// request of the same run is answered with the current status.
func (a *Agent) Enable(req EnableRequest) (Status, error) {
	if err := req.Validate(); err != nil {
		return Status{}, fmt.Errorf("enable: %w", err)
	}
	if req.DeadlineIn <= 0 {
		return Status{}, errors.New("enable: no deadline: the dead man's switch must be armed")
	}
	a.mu.Lock()
	switch {
	case a.phase == PhaseIdle:
	case a.runID == req.RunID && (a.phase.Busy() || a.phase == PhaseRestored || a.phase == PhaseRestoreFailed):
		a.mu.Unlock()
		return a.Status(), nil
	case a.phase == PhaseRecovering:
		a.mu.Unlock()
		return Status{}, fmt.Errorf("enable: %w: the agent is still restoring what an earlier agent left", ErrConflict)
	default:
		ph, run := a.phase, a.runID
		a.mu.Unlock()
		return Status{}, fmt.Errorf("enable: %w: the agent is %s (run %q)", ErrConflict, ph, run)
	}
	a.phase, a.runID = PhaseEnabling, req.RunID
	a.comps = nil
	for _, c := range enable.Components {
		if slices.Contains(req.Components, c) {
			a.comps = append(a.comps, ComponentStatus{Component: c, Phase: ComponentPlanned, Service: ServiceName(c)})
		}
	}
	ctx, cancel := context.WithCancel(a.baseCtx)
	a.enableCancel = cancel
	a.setDeadlineLocked(time.Duration(req.DeadlineIn))
	a.mu.Unlock()
	a.log.Info("enable requested", "run", req.RunID, "components", fmt.Sprint(req.Components), "rate_per_million", req.SamplingRatePerMillion, "deadline_in", time.Duration(req.DeadlineIn))
	a.wg.Go(func() {
		defer cancel()
		a.opMu.Lock()
		defer a.opMu.Unlock()
		if err := a.enable(ctx, req.PlanRequest); err != nil {
			a.addError(err)
			if ctx.Err() != nil {
				// Cancelled by a restore request or the agent stopping: that restore undoes
				// what was applied.
				a.log.Warn("enable interrupted", "err", err)
				return
			}
			a.log.Error("enable failed: restoring", "err", err)
			a.restoreHeld("enable failed: "+err.Error(), false, false)
			return
		}
		a.mu.Lock()
		if a.phase == PhaseEnabling {
			a.phase = PhaseEnabled
		}
		a.mu.Unlock()
		a.log.Info("tracing enabled", "run", req.RunID)
	})
	return a.Status(), nil
}

// enable applies each component's plan, restarts it and waits for its health, one at a time.
func (a *Agent) enable(ctx context.Context, req PlanRequest) error {
	specs, skips := a.node.specs(ctx, req, a.target(req))
	for _, s := range skips {
		if s.Error {
			a.setComp(s.Component, func(cs *ComponentStatus) { cs.Phase, cs.Error = ComponentFailed, s.Reason })
			return fmt.Errorf("enable %s: %s", s.Component, s.Reason)
		}
		a.setComp(s.Component, func(cs *ComponentStatus) { cs.Phase, cs.Error = ComponentSkipped, s.Reason })
	}
	for _, cs := range specs {
		c := cs.spec.Component
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("enable %s: %w", c, err)
		}
		plan, err := enable.BuildPlan(ctx, a.opts.HostRoot, cs.spec)
		if err != nil {
			a.setComp(c, func(s *ComponentStatus) { s.Phase, s.Error = ComponentFailed, err.Error() })
			return fmt.Errorf("enable %s: %w", c, err)
		}
		a.setComp(c, func(s *ComponentStatus) { s.Plan = &plan })
		if plan.AlreadyEnabled {
			a.setComp(c, func(s *ComponentStatus) { s.Phase = ComponentAlreadyEnabled })
			a.log.Info("tracing already on: left alone", "component", string(c), "reason", plan.Reason)
			continue
		}
		a.setComp(c, func(s *ComponentStatus) { s.Phase = ComponentEnabling })
		before, err := a.restarter.Processes(ctx, c)
		if err != nil {
			a.setComp(c, func(s *ComponentStatus) { s.Phase, s.Error = ComponentFailed, err.Error() })
			return fmt.Errorf("enable %s: %w", c, err)
		}
		applied, err := enable.Apply(ctx, a.opts.HostRoot, plan, enable.ApplyOptions{JournalDir: a.opts.JournalDir, RunID: req.RunID, Logger: a.log, Now: a.now})
		a.setComp(c, func(s *ComponentStatus) { s.RecordID, s.Files = applied.RecordID, applied.Files })
		if err != nil {
			a.setComp(c, func(s *ComponentStatus) { s.Phase, s.Error = ComponentFailed, err.Error() })
			return err
		}
		rep, err := a.restarter.Restart(ctx, RestartRequest{Component: c, Restart: plan.Restart, Before: before, Health: cs.health})
		a.setComp(c, func(s *ComponentStatus) { s.Enabled = &rep })
		if err != nil {
			a.setComp(c, func(s *ComponentStatus) { s.Phase, s.Error = ComponentFailed, err.Error() })
			return fmt.Errorf("enable %s: %w", c, err)
		}
		a.setComp(c, func(s *ComponentStatus) { s.Phase = ComponentEnabled })
		a.log.Info("component enabled", "component", string(c), "record", applied.RecordID, "restart", rep.Method, "took", time.Duration(rep.Took).Round(time.Millisecond))
	}
	return nil
}

// Restore starts undoing every change on the node, in the background (cancelling an enable in
// flight), and returns a channel closed when it ends. Restoring an agent that is restored already
// does nothing; restoring an idle agent only stops its receiver.
func (a *Agent) Restore(req RestoreRequest) (<-chan struct{}, error) {
	reason := req.Reason
	if reason == "" {
		reason = "requested"
	}
	a.mu.Lock()
	if a.phase == PhaseRecovering {
		a.mu.Unlock()
		return nil, fmt.Errorf("restore: %w: the agent is restoring what an earlier agent left", ErrConflict)
	}
	if a.phase == PhaseRestored && !req.Force {
		a.mu.Unlock()
		done := make(chan struct{})
		close(done)
		return done, nil
	}
	if a.restoreDone != nil {
		done := a.restoreDone
		a.mu.Unlock()
		return done, nil
	}
	done := make(chan struct{})
	a.restoreDone = done
	if a.enableCancel != nil {
		a.enableCancel()
	}
	// The phase changes now, so that a status read right after this request shows the restore.
	fromIdle := a.phase == PhaseIdle
	a.phase, a.restoreReason = PhaseRestoring, reason
	a.mu.Unlock()
	a.wg.Go(func() {
		a.opMu.Lock()
		defer a.opMu.Unlock()
		a.restoreHeld(reason, req.Force, fromIdle)
	})
	return done, nil
}

// restoreHeld restores with opMu held and finishes the current restore request. fromIdle says
// that nothing of a run was applied (only the receiver is stopped, unless forced).
func (a *Agent) restoreHeld(reason string, force, fromIdle bool) {
	a.mu.Lock()
	if a.restoreDone == nil {
		a.restoreDone = make(chan struct{})
	}
	done := a.restoreDone
	a.restoreReason = reason
	a.phase = PhaseRestoring
	a.deadline = time.Time{}
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.restoreDone = nil
		a.mu.Unlock()
		close(done)
	}()
	a.log.Info("restore started", "reason", reason)
	ctx := context.WithoutCancel(a.baseCtx)
	var err error
	if !fromIdle || force {
		var statuses []ComponentStatus
		statuses, err = a.restoreRecords(ctx, force)
		a.mergeRestored(statuses)
	}
	left, perr := enable.Pending(ctx, a.opts.HostRoot, a.opts.JournalDir)
	a.mu.Lock()
	a.pending = len(left)
	a.mu.Unlock()
	if err != nil || perr != nil || len(left) > 0 {
		if err != nil {
			a.addError(err)
		}
		if perr != nil {
			a.addError(perr)
		}
		a.log.Error("restore incomplete: the journal is kept on the node", "pending_records", len(left), "journal", a.opts.JournalDir)
		a.setPhase(PhaseRestoreFailed)
		return
	}
	// Every component is back as it was: nothing exports to the receiver any more.
	if err := a.closeArchive(ctx); err != nil {
		a.addError(err)
	}
	a.setPhase(PhaseRestored)
	a.log.Info("restore complete", "reason", reason)
}

// restoreRecords restores every journal record on the node, newest first, one component at a
// time: write the originals back, restart the component, wait for it to be healthy.
func (a *Agent) restoreRecords(ctx context.Context, force bool) ([]ComponentStatus, error) {
	recs, listErr := enable.Pending(ctx, a.opts.HostRoot, a.opts.JournalDir)
	errs := []error{listErr}
	var out []ComponentStatus
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		c := r.Component
		cs := ComponentStatus{Component: c, Service: ServiceName(c), RecordID: r.ID}
		before, perr := a.restarter.Processes(ctx, c)
		res, err := enable.Restore(ctx, a.opts.HostRoot, enable.RestoreOptions{JournalDir: a.opts.JournalDir, IDs: []string{r.ID}, Force: force, Logger: a.log})
		if len(res) == 0 && errors.Is(err, fs.ErrNotExist) {
			// Restored and removed by someone else meanwhile (an agent stopping while its successor
			// starts): nothing left to do for it.
			a.log.Info("journal record already restored elsewhere", "record", r.ID)
			continue
		}
		changed := false
		for _, rr := range res {
			for _, f := range rr.Files {
				cs.Restored = append(cs.Restored, FileOutcome{Path: f.Path, Outcome: string(f.Outcome), Error: f.Error})
			}
			changed = changed || rr.Changed
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", c, err))
			cs.Error = err.Error()
		}
		if changed {
			if perr != nil {
				before = nil
			}
			rep, rerr := a.restarter.Restart(ctx, RestartRequest{Component: c, Restart: r.Restart, Before: before, Health: a.node.health(ctx, c)})
			cs.RestoreRestart = &rep
			if rerr != nil {
				errs = append(errs, fmt.Errorf("restore %s: %w", c, rerr))
				cs.Error = joinMsg(cs.Error, rerr.Error())
			}
		}
		cs.Phase = ComponentRestored
		if cs.Error != "" {
			cs.Phase = ComponentRestoreFailed
		}
		a.log.Info("component restored", "component", string(c), "record", r.ID, "changed", changed, "ok", cs.Error == "")
		out = append(out, cs)
	}
	return out, errors.Join(errs...)
}

func joinMsg(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// mergeRestored copies restore outcomes into the run's component statuses (by journal record),
// and keeps those of records from earlier runs as recovered.
func (a *Agent) mergeRestored(statuses []ComponentStatus) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, rs := range statuses {
		found := false
		for i := range a.comps {
			cs := &a.comps[i]
			if cs.RecordID != "" && cs.RecordID == rs.RecordID {
				cs.Phase, cs.Restored, cs.RestoreRestart = rs.Phase, rs.Restored, rs.RestoreRestart
				cs.Error = joinMsg(cs.Error, rs.Error)
				found = true
			}
		}
		if !found {
			a.recovered = append(a.recovered, rs)
		}
	}
}

// closeArchive stops the receiver and finishes the archive.
func (a *Agent) closeArchive(ctx context.Context) error {
	a.mu.Lock()
	if a.archiveClosed {
		a.mu.Unlock()
		return nil
	}
	a.archiveClosed = true
	a.mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := a.rcv.Shutdown(sctx)
	if cerr := a.aw.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close span archive: %w", cerr))
	}
	st := a.rec.Stats()
	a.log.Info("receiver stopped", "spans", st.Spans, "dropped_spans", st.DroppedSpans, "bytes", st.Archive.WrittenBytes)
	return err
}

// SetDeadline moves the dead man's switch to in from now. It is only armed while changes are
// applied or being applied.
func (a *Agent) SetDeadline(in time.Duration) error {
	if in <= 0 {
		return errors.New("set deadline: it must be in the future")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.phase != PhaseEnabling && a.phase != PhaseEnabled {
		return fmt.Errorf("set deadline: %w: the agent is %s", ErrConflict, a.phase)
	}
	a.setDeadlineLocked(in)
	return nil
}

func (a *Agent) setDeadlineLocked(in time.Duration) {
	a.deadline = a.now().Add(in)
	select {
	case a.deadlineSet <- struct{}{}:
	default:
	}
}

// deadlineLoop restores the node when the deadline passes with changes applied.
func (a *Agent) deadlineLoop() {
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-a.baseCtx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-a.deadlineSet:
			a.mu.Lock()
			d := a.deadline
			a.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			if d.IsZero() {
				fire = nil
				continue
			}
			timer = time.NewTimer(max(d.Sub(a.now()), 0))
			fire = timer.C
		case <-fire:
			fire = nil
			a.mu.Lock()
			d, ph := a.deadline, a.phase
			a.mu.Unlock()
			if d.IsZero() || (ph != PhaseEnabling && ph != PhaseEnabled) {
				continue
			}
			if wait := d.Sub(a.now()); wait > 0 { // moved while the timer ran
				timer = time.NewTimer(wait)
				fire = timer.C
				continue
			}
			a.log.Warn("deadline passed without word from the CLI: restoring the node on my own", "deadline", d)
			if _, err := a.Restore(RestoreRequest{Reason: "deadline passed without word from the CLI"}); err != nil {
				a.addError(err)
			}
		}
	}
}

// selfDestructLoop deletes the agent's namespace once its CLI is gone and nothing is left to undo.
func (a *Agent) selfDestructLoop() {
	every := min(max(a.opts.SelfDestructAfter/4, time.Second), time.Minute)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-a.baseCtx.Done():
			return
		case <-tick.C:
		}
		a.mu.Lock()
		idle := a.now().Sub(a.lastContact)
		ok := (a.phase == PhaseIdle || a.phase == PhaseRestored) && a.pending == 0 && !a.destructed && idle >= a.opts.SelfDestructAfter
		if ok {
			a.destructed = true
		}
		a.mu.Unlock()
		if !ok {
			continue
		}
		a.log.Warn("no word from the CLI and nothing left to undo: deleting my namespace", "namespace", a.opts.Namespace, "idle", idle.Round(time.Second))
		err := a.opts.Client.CoreV1().Namespaces().Delete(a.baseCtx, a.opts.Namespace, metav1.DeleteOptions{})
		if err != nil {
			a.addError(fmt.Errorf("delete namespace %s: %w", a.opts.Namespace, err))
			a.mu.Lock()
			a.destructed = false
			a.mu.Unlock()
		}
	}
}

// Status returns the agent's state.
func (a *Agent) Status() Status {
	st := Status{
		APIVersion: APIVersion,
		Node:       a.opts.NodeName,
		Receiver:   a.Receiver(),
		Stats:      a.rec.Stats(),
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st.Phase, st.RunID, st.Now, st.Deadline = a.phase, a.runID, a.now(), a.deadline
	st.Components = slices.Clone(a.comps)
	st.Recovered = slices.Clone(a.recovered)
	st.PendingRecords = a.pending
	st.RestoreReason = a.restoreReason
	st.Errors = slices.Clone(a.errs)
	st.Archive = ArchiveInfo{Records: st.Stats.Archive.Records, RawBytes: st.Stats.Archive.RawBytes, Bytes: st.Stats.Archive.WrittenBytes, Closed: a.archiveClosed}
	return st
}

// Shutdown restores the node if anything is applied (under ShutdownTimeout, whatever ctx says),
// stops the receiver, and waits for the agent's goroutines.
func (a *Agent) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return nil
	}
	a.stopped = true
	busy := a.phase.Busy()
	a.mu.Unlock()
	var errs []error
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.ShutdownTimeout)
	defer cancel()
	if busy {
		a.log.Warn("agent stopping with changes applied: restoring first")
		done, err := a.Restore(RestoreRequest{Reason: "agent stopping"})
		if err != nil {
			errs = append(errs, err)
		} else {
			select {
			case <-done:
			case <-rctx.Done():
				errs = append(errs, fmt.Errorf("restore before stopping: %w (the journal stays on the node; the next agent restores it)", rctx.Err()))
			}
		}
	}
	a.baseCancel()
	waited := make(chan struct{})
	go func() { a.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-rctx.Done():
		errs = append(errs, fmt.Errorf("stop agent: %w", rctx.Err()))
	}
	if err := a.closeArchive(rctx); err != nil {
		errs = append(errs, err)
	}
	st := a.Status()
	if st.Phase == PhaseRestoreFailed || st.PendingRecords > 0 {
		errs = append(errs, fmt.Errorf("stop agent: %d journal records are not restored; they stay in %s for the next agent or `trace-capture restore`", st.PendingRecords, a.opts.JournalDir))
	}
	a.log.Info("agent stopped")
	errs = append(errs, a.logFile.Close())
	return errors.Join(errs...)
}

func (a *Agent) setPhase(p Phase) {
	a.mu.Lock()
	a.phase = p
	a.mu.Unlock()
}

func (a *Agent) addError(err error) {
	a.mu.Lock()
	a.errs = append(a.errs, err.Error())
	a.mu.Unlock()
}

func (a *Agent) setComp(c enable.Component, f func(*ComponentStatus)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.comps {
		if a.comps[i].Component == c {
			f(&a.comps[i])
			return
		}
	}
}

func (a *Agent) touch() {
	a.mu.Lock()
	a.lastContact = a.now()
	a.mu.Unlock()
}

// teeLogger writes to w (text, Info and above) and to base, if any.
func teeLogger(base *slog.Logger, w *os.File) *slog.Logger {
	file := slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})
	if base == nil {
		return slog.New(file)
	}
	return slog.New(slog.NewMultiHandler(base.Handler(), file))
}

// Run runs an agent until ctx ends: it starts it, serves the control API on Options.Listen, and on
// the end of ctx restores whatever is applied before it returns.
func Run(ctx context.Context, opts Options) error {
	a, err := New(opts)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", a.opts.Listen)
	if err != nil {
		a.logFile.Close()
		a.aw.Close()
		return fmt.Errorf("listen for the control API: %w", err)
	}
	if err := a.Start(ctx); err != nil {
		ln.Close()
		a.logFile.Close()
		a.aw.Close()
		return err
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	a.log.Info("control API listening", "addr", ln.Addr().String())
	if opts.OnListening != nil {
		opts.OnListening(ln.Addr().String())
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
		serveErr = fmt.Errorf("serve the control API: %w", serveErr)
	}
	err = a.Shutdown(ctx)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(serveErr, err)
}
