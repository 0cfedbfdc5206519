package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/trace-capture/trace-capture/capture/agent"
	"github.com/trace-capture/trace-capture/capture/enable"
	"github.com/trace-capture/trace-capture/capture/journal"
)

// PlanSchemaVersion is the version of Plan's JSON form.
const PlanSchemaVersion = 1

// placeholderEndpoint stands for the agent's receiver, whose port is chosen on each node when the
// agent starts; the plan shows it as endpointShown.
const (
	placeholderEndpoint     = "127.0.0.1:4317"
	placeholderHTTPEndpoint = "127.0.0.1:4318"
	endpointShown           = "127.0.0.1:<agent-port>"
)

// Plan says what a run changes: per node and component, the version, the method, the flags,
// environment and settings, the files, the restart and its expected unavailability.
type Plan struct {
	SchemaVersion int            `json:"schemaVersion"`
	Cluster       ClusterSummary `json:"cluster"`
	// Duration is the window; SamplingRatePerMillion the rate the components are set to.
	Duration               string     `json:"duration"`
	SamplingRatePerMillion int32      `json:"samplingRatePerMillion"`
	Image                  string     `json:"image,omitempty"`
	Nodes                  []NodePlan `json:"nodes"`
	// Notes explain what is left out and why (OpenShift, managed control planes).
	Notes []string `json:"notes,omitempty"`
}

// ClusterSummary identifies the cluster.
type ClusterSummary struct {
	Name             string  `json:"name,omitempty"`
	Flavour          Flavour `json:"flavour"`
	ServerVersion    string  `json:"serverVersion"`
	OpenShiftVersion string  `json:"openshiftVersion,omitempty"`
}

// NodePlan is one node's part.
type NodePlan struct {
	Node           string   `json:"node"`
	Roles          []string `json:"roles,omitempty"`
	ControlPlane   bool     `json:"controlPlane,omitempty"`
	KubeletVersion string   `json:"kubeletVersion,omitempty"`
	Runtime        string   `json:"runtime,omitempty"`
	RuntimeVersion string   `json:"runtimeVersion,omitempty"`
	// Source is "api" while the plan comes from what the API shows, "node" once the node's agent
	// planned it from the node's files (exact paths and checksums).
	Source     string          `json:"source"`
	Components []ComponentPlan `json:"components,omitempty"`
	Skipped    []SkippedPlan   `json:"skipped,omitempty"`
}

// SkippedPlan is a component left out on a node.
type SkippedPlan struct {
	Component enable.Component `json:"component"`
	Reason    string           `json:"reason"`
}

// ComponentPlan is one component's change on one node.
type ComponentPlan struct {
	Component    enable.Component `json:"component"`
	Version      string           `json:"version"`
	Method       enable.Method    `json:"method,omitempty"`
	Flags        []string         `json:"flags,omitempty"`
	RemovedFlags []string         `json:"removedFlags,omitempty"`
	Env          []enable.EnvVar  `json:"env,omitempty"`
	Settings     []string         `json:"settings,omitempty"`
	Files        []PlannedFile    `json:"files,omitempty"`
	Restart      enable.Restart   `json:"restart"`
	// AlreadyEnabled: tracing is on already; the component is left alone (and only recorded).
	AlreadyEnabled bool     `json:"alreadyEnabled,omitempty"`
	Reason         string   `json:"reason,omitempty"`
	Notes          []string `json:"notes,omitempty"`
}

// PlannedFile is a file the change writes.
type PlannedFile struct {
	Path string `json:"path"`
	// Action is "edit" or "create".
	Action      string `json:"action"`
	Description string `json:"description,omitempty"`
	// SHA256Before and SHA256After are known once the node planned it.
	SHA256Before string `json:"sha256Before,omitempty"`
	SHA256After  string `json:"sha256After,omitempty"`
}

// Changes tells whether the plan changes anything.
func (p *Plan) Changes() bool {
	for _, n := range p.Nodes {
		for _, c := range n.Components {
			if !c.AlreadyEnabled {
				return true
			}
		}
	}
	return false
}

// Node returns the plan of a node.
func (p *Plan) Node(name string) *NodePlan {
	for i := range p.Nodes {
		if p.Nodes[i].Node == name {
			return &p.Nodes[i]
		}
	}
	return nil
}

// Components returns the components of the node plan that the run switches on (or records, when
// already on).
func (n *NodePlan) componentList() []enable.Component {
	var out []enable.Component
	for _, c := range n.Components {
		out = append(out, c.Component)
	}
	return out
}

// MakePlan turns the facts into the plan, from what the API shows (Source "api"); the agents
// refine it from the nodes' files before anything changes.
func MakePlan(f *Facts, o *Options) *Plan {
	p := &Plan{
		SchemaVersion:          PlanSchemaVersion,
		Cluster:                ClusterSummary{Name: o.ClusterName, Flavour: f.Flavour, ServerVersion: f.ServerVersion, OpenShiftVersion: f.OpenShiftVersion},
		Duration:               o.Duration.String(),
		SamplingRatePerMillion: o.SamplingRatePerMillion,
		Image:                  o.Image,
	}
	target := enable.Target{Endpoint: placeholderEndpoint, HTTPEndpoint: placeholderHTTPEndpoint, SamplingRatePerMillion: o.SamplingRatePerMillion}
	switch f.Flavour {
	case FlavourOpenShift:
		p.Notes = append(p.Notes, openShiftNotes...)
	case FlavourManaged:
		p.Notes = append(p.Notes, "No control-plane node or pod is visible (a managed control plane): kube-apiserver and etcd cannot be traced; the nodes' kubelet and container runtime are.")
	case FlavourUnknown:
		p.Notes = append(p.Notes, "kube-apiserver does not run as a static pod here: only the nodes' kubelet and container runtime are traced.")
	}
	for _, nf := range f.Nodes {
		if !nf.Selected {
			continue
		}
		np := NodePlan{Node: nf.Name, Roles: nf.Roles, ControlPlane: nf.ControlPlane, KubeletVersion: nf.KubeletVersion,
			Runtime: nf.Runtime, RuntimeVersion: nf.RuntimeVersion, Source: "api"}
		skipAll := ""
		switch {
		case nf.OS != "" && nf.OS != "linux":
			skipAll = "the node runs " + nf.OS + ": only Linux nodes are supported"
		case !nf.Ready:
			skipAll = "the node is not Ready: no agent would run there"
		}
		for _, c := range enable.Components {
			if !o.wants(c) {
				continue
			}
			if skipAll != "" {
				np.Skipped = append(np.Skipped, SkippedPlan{Component: c, Reason: skipAll})
				continue
			}
			cp, skip := planComponent(f, &nf, c, target)
			switch {
			case skip == "-":
				// Not there (another runtime, not a control-plane node): nothing to say.
			case skip != "":
				np.Skipped = append(np.Skipped, SkippedPlan{Component: c, Reason: skip})
			default:
				np.Components = append(np.Components, cp)
			}
		}
		if len(np.Components) > 0 || len(np.Skipped) > 0 {
			p.Nodes = append(p.Nodes, np)
		}
	}
	return p
}

var openShiftNotes = []string{
	"OpenShift: there is no supported switch for kube-apiserver or etcd tracing (the enhancement was never merged); trace-capture does not edit files that operators own and revert, so both are left out.",
	"OpenShift: the kubelet's configuration belongs to the Machine Config Operator (a KubeletConfig drains and reboots every node of the pool unless a NodeDisruptionPolicy says otherwise): the kubelet is left out.",
	"OpenShift: CRI-O is traced through a new drop-in in /etc/crio/crio.conf.d, which no MachineConfig owns, and a restart of crio.service; the drop-in is removed and CRI-O restarted again after the window.",
}

// planComponent plans c on a node from the API's facts. It returns a skip reason instead ("-"
// when the component simply does not run there).
func planComponent(f *Facts, nf *NodeFacts, c enable.Component, target enable.Target) (ComponentPlan, string) {
	cp := ComponentPlan{Component: c}
	switch c {
	case enable.APIServer, enable.Etcd:
		if f.Flavour == FlavourOpenShift {
			return cp, "no supported way on OpenShift (see the notes)"
		}
		sp := nf.StaticPods[c]
		if sp == nil {
			if nf.ControlPlane && f.Flavour != FlavourStaticPods {
				return cp, fmt.Sprintf("%s does not run as a static pod on this node", c)
			}
			return cp, "-"
		}
		v, err := staticPodVersion(f, sp, c)
		if err != nil {
			return cp, err.Error()
		}
		cp.Version, cp.Method = v.String(), enable.MethodStaticPod
		tcPath := filepath.Join(filepath.Dir(enable.DefaultManifestDir), enable.TracingConfigFileName)
		ar, err := enable.EnableArgs(enable.ArgsInput{Component: c, Version: v, Args: sp.Args, Env: sp.Env, TracingConfigPath: tcPath}, target)
		if err != nil {
			return cp, err.Error()
		}
		if ar.AlreadyEnabled {
			sp.TracingOn, sp.Reason = true, ar.Reason
			return alreadyOn(cp, ar.Reason), ""
		}
		cp.Flags, cp.RemovedFlags, cp.Notes = shown(ar.Flags), ar.Removed, ar.Notes
		manifest := filepath.Join(enable.DefaultManifestDir, string(c)+".yaml")
		if c == enable.APIServer {
			cp.Files = append(cp.Files, PlannedFile{Path: tcPath, Action: "create", Description: "kube-apiserver TracingConfiguration (mounted into the pod)"})
			cp.Restart = enable.Restart{Kind: enable.RestartStaticPod, Service: string(c), ExpectedUnavailabilitySeconds: 60,
				Description: "the kubelet recreates the kube-apiserver static pod; this node's API server is unavailable for about 10-60 s"}
		} else {
			cp.Restart = enable.Restart{Kind: enable.RestartStaticPod, Service: string(c), ExpectedUnavailabilitySeconds: 30,
				Description: "the kubelet recreates the etcd static pod; this member is unavailable for about 10-30 s (one member at a time: quorum is kept)"}
		}
		cp.Files = append(cp.Files, PlannedFile{Path: manifest, Action: "edit", Description: string(c) + " static pod manifest (the agent finds the real folder from the kubelet's command line)"})
	case enable.Kubelet:
		if f.Flavour == FlavourOpenShift {
			return cp, "owned by the Machine Config Operator on OpenShift (see the notes)"
		}
		v, err := enable.ParseVersion(nf.KubeletVersion)
		if err != nil {
			return cp, "kubelet version: " + err.Error()
		}
		if err := enable.CheckKubeletVersion(v); err != nil {
			return cp, err.Error()
		}
		cp.Version, cp.Method = v.String(), enable.MethodKubeletConfig
		cp.Settings = []string{"tracing.endpoint = " + endpointShown, fmt.Sprintf("tracing.samplingRatePerMillion = %d", target.SamplingRatePerMillion)}
		if !v.AtLeast(1, 27, 0) {
			cp.Settings = append(cp.Settings, "featureGates.KubeletTracing = true")
		}
		cp.Files = []PlannedFile{{Path: enable.DefaultKubeletConfig, Action: "edit", Description: "KubeletConfiguration (the agent finds the real file from the kubelet's --config)"}}
		cp.Restart = enable.Restart{Kind: enable.RestartService, Service: "kubelet", Unit: "kubelet.service", ExpectedUnavailabilitySeconds: 10,
			Description: "the kubelet restarts (systemd, or its supervisor after SIGTERM); running pods are not touched; node status pauses for a few seconds"}
	case enable.Containerd:
		if nf.Runtime != "containerd" {
			return cp, "-"
		}
		v, err := enable.ParseVersion(nf.RuntimeVersion)
		if err != nil {
			return cp, "containerd version: " + err.Error()
		}
		if err := enable.CheckContainerdVersion(v); err != nil {
			return cp, err.Error()
		}
		cp.Version = v.String()
		restart := enable.Restart{Kind: enable.RestartService, Service: "containerd", Unit: "containerd.service", ExpectedUnavailabilitySeconds: 10,
			Description: "containerd restarts; running containers keep running under their shims; CRI calls fail for a few seconds"}
		if v.Major >= 2 {
			env, err := enable.ContainerdEnv(v, target)
			if err != nil {
				return cp, err.Error()
			}
			for i := range env {
				env[i].Value = strings.ReplaceAll(env[i].Value, placeholderEndpoint, endpointShown)
			}
			cp.Method, cp.Env = enable.MethodSystemdDropIn, env
			cp.Files = []PlannedFile{{Path: filepath.Join(enable.DefaultSystemdUnitDir, "containerd.service.d", enable.SystemdDropInName), Action: "create",
				Description: "systemd drop-in with the OTEL_* environment (where systemd does not run containerd: the environment file its supervisor reads)"}}
			restart.DaemonReload = true
		} else {
			cp.Method = enable.MethodContainerdConfig
			cp.Settings = []string{"[plugins.\"io.containerd.tracing.processor.v1.otlp\"] endpoint = " + strings.Replace(placeholderHTTPEndpoint, "4318", "<agent-http-port>", 1),
				fmt.Sprintf("[plugins.\"io.containerd.internal.v1.tracing\"] sampling_ratio = %g", float64(target.SamplingRatePerMillion)/1e6)}
			cp.Files = []PlannedFile{{Path: enable.DefaultContainerdConfig, Action: "edit", Description: "containerd config.toml (the agent finds the real file from containerd's --config)"}}
		}
		cp.Restart = restart
	case enable.CRIO:
		if nf.Runtime != "cri-o" {
			return cp, "-"
		}
		v, err := enable.ParseVersion(nf.RuntimeVersion)
		if err != nil {
			return cp, "CRI-O version: " + err.Error()
		}
		if err := enable.CheckCRIOVersion(v); err != nil {
			return cp, err.Error()
		}
		cp.Version, cp.Method = v.String(), enable.MethodCRIODropIn
		cp.Settings = []string{"crio.tracing.enable_tracing = true", "crio.tracing.tracing_endpoint = " + endpointShown,
			fmt.Sprintf("crio.tracing.tracing_sampling_rate_per_million = %d", target.SamplingRatePerMillion)}
		cp.Files = []PlannedFile{{Path: filepath.Join(enable.DefaultCRIOConfigDir, enable.CRIODropInName), Action: "create", Description: "CRI-O drop-in"}}
		cp.Restart = enable.Restart{Kind: enable.RestartService, Service: "crio", Unit: "crio.service", ExpectedUnavailabilitySeconds: 10,
			Description: "CRI-O restarts (a full restart: SIGHUP does not reload tracing); running containers keep running under conmon"}
	}
	return cp, ""
}

func alreadyOn(cp ComponentPlan, reason string) ComponentPlan {
	cp.AlreadyEnabled, cp.Reason = true, reason
	cp.Method, cp.Flags, cp.Files = "", nil, nil
	cp.Restart = enable.Restart{Kind: enable.RestartNone, Service: string(cp.Component), Description: "tracing is already on: left alone; its spans go wherever it already sends them"}
	return cp
}

func staticPodVersion(f *Facts, sp *StaticPod, c enable.Component) (enable.Version, error) {
	if sp.Version != "" {
		v, err := enable.ParseVersion(sp.Version)
		want := 1
		if c == enable.Etcd {
			want = 3
		}
		if err == nil && v.Major == want {
			return v, nil
		}
	}
	if c == enable.APIServer && f.ServerVersion != "" {
		return enable.ParseVersion(f.ServerVersion)
	}
	return enable.Version{}, fmt.Errorf("the version of %s is not in its image tag (%s); the agent reads it on the node", c, sp.Image)
}

func shown(flags []string) []string {
	out := make([]string, len(flags))
	for i, f := range flags {
		out[i] = strings.ReplaceAll(f, placeholderEndpoint, endpointShown)
	}
	return out
}

// refine replaces a node's plan by what its agent planned from the node's files.
func (p *Plan) refine(np agent.NodePlan) {
	n := p.Node(np.Node)
	if n == nil {
		return
	}
	n.Source = "node"
	n.Components, n.Skipped = nil, nil
	for _, ep := range np.Plans {
		cp := ComponentPlan{
			Component: ep.Component, Version: ep.Version.String(), Method: ep.Method,
			Flags: ep.Flags, RemovedFlags: ep.RemovedFlags, Env: ep.Env, Settings: ep.Settings,
			Restart: ep.Restart, AlreadyEnabled: ep.AlreadyEnabled, Reason: ep.Reason, Notes: ep.Notes,
		}
		for _, ch := range ep.Changes {
			pf := PlannedFile{Path: ch.Path, Action: "edit", Description: ch.Description, SHA256Before: ch.OriginalSHA256, SHA256After: ch.NewSHA256}
			if ch.Created {
				pf.Action = "create"
			}
			cp.Files = append(cp.Files, pf)
		}
		n.Components = append(n.Components, cp)
	}
	for _, s := range np.Skipped {
		n.Skipped = append(n.Skipped, SkippedPlan{Component: s.Component, Reason: s.Reason})
	}
}

// WriteJSON writes the plan as indented JSON (what `--dry-run -o json` prints).
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// WriteText writes the plan for people.
func (p *Plan) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	name := p.Cluster.Name
	if name == "" {
		name = "(unnamed)"
	}
	fl := string(p.Cluster.Flavour)
	if p.Cluster.OpenShiftVersion != "" {
		fl += " " + p.Cluster.OpenShiftVersion
	}
	ew.printf("Cluster %s: %s, Kubernetes %s\n", name, fl, p.Cluster.ServerVersion)
	ew.printf("Capture window %s, sampling %d per million", p.Duration, p.SamplingRatePerMillion)
	if p.Image != "" {
		ew.printf(", agent image %s", p.Image)
	}
	ew.printf("\n")
	if len(p.Nodes) == 0 {
		ew.printf("\nNo node is selected.\n")
	}
	cpDown := 0
	for _, n := range p.Nodes {
		role := strings.Join(n.Roles, ",")
		if role == "" {
			role = "worker"
		}
		ew.printf("\n%s (%s): kubelet %s, %s %s", n.Node, role, n.KubeletVersion, n.Runtime, n.RuntimeVersion)
		if n.Source == "node" {
			ew.printf("  [checked on the node]")
		}
		ew.printf("\n")
		nodeDown := 0
		for _, c := range n.Components {
			if c.AlreadyEnabled {
				ew.printf("  %-15s %-8s already traced: left alone (%s)\n", c.Component, c.Version, c.Reason)
				continue
			}
			ew.printf("  %-15s %-8s %s\n", c.Component, c.Version, c.Method)
			if len(c.Flags) > 0 {
				ew.printf("      flags     %s\n", strings.Join(c.Flags, " "))
			}
			if len(c.RemovedFlags) > 0 {
				ew.printf("      removes   %s\n", strings.Join(c.RemovedFlags, " "))
			}
			for _, e := range c.Env {
				ew.printf("      env       %s=%s\n", e.Name, e.Value)
			}
			for _, s := range c.Settings {
				ew.printf("      sets      %s\n", s)
			}
			for _, f := range c.Files {
				ew.printf("      %-9s %s\n", f.Action, f.Path)
			}
			if c.Restart.Kind != enable.RestartNone {
				ew.printf("      restart   %s (up to ~%ds)\n", c.Restart.Description, c.Restart.ExpectedUnavailabilitySeconds)
				if c.Restart.Kind == enable.RestartStaticPod {
					nodeDown += c.Restart.ExpectedUnavailabilitySeconds
				}
			}
			for _, note := range c.Notes {
				ew.printf("      note      %s\n", note)
			}
		}
		for _, s := range n.Skipped {
			ew.printf("  %-15s skipped: %s\n", s.Component, s.Reason)
		}
		cpDown = max(cpDown, nodeDown)
	}
	if cpDown > 0 {
		ew.printf("\nControl-plane nodes are changed one at a time, each after the previous one is healthy again\n(up to ~%ds of its API server and etcd member per node, twice: to switch on and to restore).\n", cpDown)
	}
	if p.Changes() {
		ew.printf("Every original is journalled on its node (%s) before it changes, and restored byte for byte\nafter the window, on Ctrl-C or on any error; agents restore on their own if this command dies.\n", journal.DefaultDir)
	}
	if len(p.Notes) > 0 {
		ew.printf("\nNotes:\n")
		for _, n := range p.Notes {
			ew.printf("  - %s\n", n)
		}
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}

// expectedEnable is a rough bound of how long switching a node on takes.
func (n *NodePlan) expectedEnable() time.Duration {
	var s int
	for _, c := range n.Components {
		s += c.Restart.ExpectedUnavailabilitySeconds
	}
	return time.Duration(s) * time.Second
}
