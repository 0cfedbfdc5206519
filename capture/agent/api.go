package agent

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/trace-capture/trace-capture/capture/enable"
	"github.com/trace-capture/trace-capture/receiver"
)

// APIVersion is the version of the control API; the CLI refuses an agent that speaks another.
const APIVersion = 1

// DefaultPort is the loopback port of the control API on the node (the agent runs in the node's
// network namespace, so it must not clash with the node's own services).
const DefaultPort = 47317

// Control API paths.
const (
	PathStatus   = "/v1/status"
	PathPlan     = "/v1/plan"
	PathEnable   = "/v1/enable"
	PathDeadline = "/v1/deadline"
	PathRestore  = "/v1/restore"
	PathArchive  = "/v1/archive"
	PathLogs     = "/v1/logs"
)

// Phase is where an agent is in its life.
type Phase string

// The phases, in the order a run goes through them.
const (
	// PhaseRecovering: the agent restores journal records left on the node before it does anything.
	PhaseRecovering Phase = "recovering"
	// PhaseIdle: ready; nothing of a run is applied.
	PhaseIdle Phase = "idle"
	// PhaseEnabling: the components are being switched on, one at a time.
	PhaseEnabling Phase = "enabling"
	// PhaseEnabled: every selected component exports to this agent.
	PhaseEnabled Phase = "enabled"
	// PhaseRestoring: the originals are being put back.
	PhaseRestoring Phase = "restoring"
	// PhaseRestored: every change was undone and verified; the receiver is stopped and the archive
	// closed.
	PhaseRestored Phase = "restored"
	// PhaseRestoreFailed: at least one change could not be undone; its journal record is kept on the
	// node and the receiver keeps running.
	PhaseRestoreFailed Phase = "restore-failed"
)

// Busy tells whether the phase has changes applied or in flight.
func (p Phase) Busy() bool {
	return p == PhaseEnabling || p == PhaseEnabled || p == PhaseRestoring
}

// ComponentPhase is where one component is.
type ComponentPhase string

// The component phases.
const (
	ComponentPlanned        ComponentPhase = "planned"
	ComponentEnabling       ComponentPhase = "enabling"
	ComponentEnabled        ComponentPhase = "enabled"
	ComponentAlreadyEnabled ComponentPhase = "already-enabled"
	ComponentSkipped        ComponentPhase = "skipped"
	ComponentFailed         ComponentPhase = "failed"
	ComponentRestored       ComponentPhase = "restored"
	ComponentRestoreFailed  ComponentPhase = "restore-failed"
)

// PlanRequest asks for the node's plans (and, as EnableRequest, for their application).
type PlanRequest struct {
	// RunID ties the journal records to the run.
	RunID string `json:"runID"`
	// Components to switch on, in any order; the agent enables them in enable.Components order.
	Components []enable.Component `json:"components"`
	// SamplingRatePerMillion is the components' sampling rate, 0..1,000,000.
	SamplingRatePerMillion int32 `json:"samplingRatePerMillion"`
	// Versions are the versions known from the API (kubelet and runtime from the node status, etcd
	// from its image); the agent reads the static pods' versions itself when one is missing.
	Versions map[enable.Component]string `json:"versions,omitempty"`
}

// Validate checks the request.
func (r PlanRequest) Validate() error {
	if !validRunID(r.RunID) {
		return fmt.Errorf("invalid run id %q", r.RunID)
	}
	if len(r.Components) == 0 {
		return fmt.Errorf("no components")
	}
	for _, c := range r.Components {
		if _, err := enable.ParseComponent(string(c)); err != nil {
			return err
		}
	}
	if r.SamplingRatePerMillion < 0 || r.SamplingRatePerMillion > 1_000_000 {
		return fmt.Errorf("sampling rate %d per million is outside 0..1000000", r.SamplingRatePerMillion)
	}
	return nil
}

func validRunID(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// EnableRequest asks the agent to switch the components on.
type EnableRequest struct {
	PlanRequest
	// DeadlineIn arms the dead man's switch: if no restore was asked for within this time, the
	// agent restores on its own. It is relative so that clock skew does not matter.
	DeadlineIn Duration `json:"deadlineIn"`
}

// DeadlineRequest moves the dead man's switch to In from now.
type DeadlineRequest struct {
	In Duration `json:"in"`
}

// RestoreRequest asks the agent to undo every change.
type RestoreRequest struct {
	// Force writes originals back even over files someone else changed since.
	Force bool `json:"force,omitempty"`
	// Reason is logged.
	Reason string `json:"reason,omitempty"`
}

// NodePlan is the plan of one node, computed by the agent from the node's files.
type NodePlan struct {
	Node  string        `json:"node"`
	Plans []enable.Plan `json:"plans"`
	// Skipped are the components that do not run on this node or cannot be planned, with why.
	Skipped []Skip `json:"skipped,omitempty"`
}

// Skip is a component left out, with the reason.
type Skip struct {
	Component enable.Component `json:"component"`
	Reason    string           `json:"reason"`
	// Error is true when the component runs but could not be planned (as opposed to not running).
	Error bool `json:"error,omitempty"`
}

// RestartReport says how a component was restarted and how long it took to be healthy again.
type RestartReport struct {
	// Method is "static-pod", "systemd", "signal" or "none".
	Method string `json:"method"`
	// Unit is the systemd unit, for Method "systemd".
	Unit string `json:"unit,omitempty"`
	// OldPIDs and NewPIDs are the processes before and after.
	OldPIDs []int `json:"oldPIDs,omitempty"`
	NewPIDs []int `json:"newPIDs,omitempty"`
	// Took is from the change to healthy again.
	Took Duration `json:"took"`
	// Health says what was checked ("GET https://127.0.0.1:6443/readyz", "unix /run/containerd/containerd.sock").
	Health string `json:"health,omitempty"`
}

// ComponentStatus is one component on the node.
type ComponentStatus struct {
	Component enable.Component `json:"component"`
	Phase     ComponentPhase   `json:"phase"`
	// Service is the service.name the component reports in its spans.
	Service string       `json:"service"`
	Plan    *enable.Plan `json:"plan,omitempty"`
	// RecordID is the journal record of the change, until it is restored.
	RecordID string `json:"recordID,omitempty"`
	// Files are the node paths changed.
	Files   []string       `json:"files,omitempty"`
	Enabled *RestartReport `json:"enabled,omitempty"`
	// Restored describes the restore: the outcome per file and the restart.
	Restored       []FileOutcome  `json:"restoredFiles,omitempty"`
	RestoreRestart *RestartReport `json:"restoreRestart,omitempty"`
	Error          string         `json:"error,omitempty"`
}

// FileOutcome is what the restore did to one file.
type FileOutcome struct {
	Path    string `json:"path"`
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}

// ArchiveInfo describes the agent's span archive.
type ArchiveInfo struct {
	Records  int64 `json:"records"`
	RawBytes int64 `json:"rawBytes"`
	Bytes    int64 `json:"bytes"`
	// Closed is true once the receiver stopped and the archive was finished; a download before that
	// is a flushed snapshot whose last record may be cut (readers tolerate it).
	Closed bool `json:"closed"`
}

// Status is the agent's state, as GET /v1/status returns it.
type Status struct {
	APIVersion int    `json:"apiVersion"`
	Node       string `json:"node"`
	Phase      Phase  `json:"phase"`
	RunID      string `json:"runID,omitempty"`
	// Now is the agent's clock; Deadline is when the dead man's switch fires (zero: disarmed).
	Now      time.Time `json:"now"`
	Deadline time.Time `json:"deadline,omitzero"`
	// Receiver is where the components export to.
	Receiver receiver.Addrs `json:"receiver"`
	// Components are in the order they were enabled.
	Components []ComponentStatus `json:"components,omitempty"`
	// Stats are the receiver's counters.
	Stats   receiver.RecorderStats `json:"stats"`
	Archive ArchiveInfo            `json:"archive"`
	// Recovered lists what the agent restored when it started (records left by an earlier agent).
	Recovered []ComponentStatus `json:"recovered,omitempty"`
	// PendingRecords counts the journal records on the node not yet restored.
	PendingRecords int `json:"pendingRecords"`
	// RestoreReason says what started the restore ("requested", "deadline", "shutdown", "enable failed").
	RestoreReason string `json:"restoreReason,omitempty"`
	// Errors are the errors of the run so far, in order.
	Errors []string `json:"errors,omitempty"`
}

// Component returns the status of c, if present.
func (s Status) Component(c enable.Component) (ComponentStatus, bool) {
	for _, cs := range s.Components {
		if cs.Component == c {
			return cs, true
		}
	}
	return ComponentStatus{}, false
}

// ServiceName is the service.name a component puts into its spans' resource.
func ServiceName(c enable.Component) string {
	switch c {
	case enable.APIServer:
		return "apiserver"
	case enable.Etcd:
		return "etcd"
	case enable.Kubelet:
		return "kubelet"
	case enable.CRIO:
		return "crio"
	case enable.Containerd:
		return "containerd"
	}
	return string(c)
}

// Duration is a time.Duration that encodes as a Go duration string ("1m30s").
type Duration time.Duration

// MarshalJSON encodes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts a duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(n)
	return nil
}

// apiError is the body of an error answer.
type apiError struct {
	Error string `json:"error"`
}
