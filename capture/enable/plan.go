package enable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/trace-capture/trace-capture/capture/journal"
)

// Method says how tracing is switched on.
type Method string

// The methods.
const (
	// MethodStaticPod edits a static-pod manifest (kube-apiserver, etcd).
	MethodStaticPod Method = "static-pod-manifest"
	// MethodKubeletConfig edits the KubeletConfiguration file.
	MethodKubeletConfig Method = "kubelet-config"
	// MethodCRIODropIn adds a drop-in to CRI-O's configuration folder.
	MethodCRIODropIn Method = "crio-drop-in"
	// MethodSystemdDropIn adds an Environment= drop-in to a systemd unit (containerd 2.x).
	MethodSystemdDropIn Method = "systemd-drop-in"
	// MethodEnvFile sets variables in an environment file read by the service's supervisor
	// (containerd 2.x without systemd).
	MethodEnvFile Method = "env-file"
	// MethodContainerdConfig edits containerd 1.6/1.7's config.toml.
	MethodContainerdConfig Method = "containerd-config"
)

// RestartKind says what makes a change take effect.
type RestartKind string

// The restart kinds.
const (
	// RestartNone: nothing changes, nothing restarts.
	RestartNone RestartKind = "none"
	// RestartStaticPod: the kubelet sees the changed manifest and recreates the pod by itself.
	RestartStaticPod RestartKind = "static-pod"
	// RestartService: the service must be restarted (systemd, or a supervisor that restarts the
	// process when it is signalled).
	RestartService RestartKind = "service"
)

// Restart says what restarts when a plan is applied or restored, and for how long.
type Restart struct {
	Kind RestartKind `json:"kind"`
	// Service is the process that restarts ("kube-apiserver", "kubelet", "containerd", ...).
	Service string `json:"service"`
	// Unit is the systemd unit, for services that systemd may run ("kubelet.service").
	Unit string `json:"unit,omitempty"`
	// DaemonReload is true when systemd must reload its units first (a unit drop-in changed).
	DaemonReload bool `json:"daemonReload,omitempty"`
	// ExpectedUnavailabilitySeconds is a rough upper bound of the service's downtime.
	ExpectedUnavailabilitySeconds int `json:"expectedUnavailabilitySeconds"`
	// Description explains it for people.
	Description string `json:"description"`
}

// Change replaces (or creates) one file.
type Change struct {
	// Path is the node path of the file.
	Path string `json:"path"`
	// Description says what the file is.
	Description string `json:"description"`
	// OriginalBytes is the content before the change; nil means the file did not exist.
	OriginalBytes []byte `json:"-"`
	// OriginalSHA256 is the hex SHA-256 of OriginalBytes ("" when the file did not exist).
	OriginalSHA256 string `json:"originalSHA256,omitempty"`
	// NewBytes is the content after the change.
	NewBytes []byte `json:"-"`
	// NewSHA256 is the hex SHA-256 of NewBytes.
	NewSHA256 string `json:"newSHA256"`
	// Mode holds the permission bits of a created file (an existing file keeps its own). In
	// JSON it is an octal string ("0644").
	Mode fs.FileMode `json:"-"`
	// Created is true when the file does not exist yet.
	Created bool `json:"created"`
}

// MarshalJSON encodes the change with its mode as an octal string.
func (c Change) MarshalJSON() ([]byte, error) {
	type plain Change
	return json.Marshal(struct {
		plain
		Mode string `json:"mode"`
	}{plain(c), fmt.Sprintf("%04o", uint32(c.Mode.Perm()))})
}

// UnmarshalJSON decodes what MarshalJSON writes (the bytes are not part of the JSON form).
func (c *Change) UnmarshalJSON(b []byte) error {
	type plain Change
	var v struct {
		plain
		Mode string `json:"mode"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = Change(v.plain)
	if v.Mode != "" {
		m, err := strconv.ParseUint(v.Mode, 8, 32)
		if err != nil || m > 0o777 {
			return fmt.Errorf("change %s: invalid mode %q", c.Path, v.Mode)
		}
		c.Mode = fs.FileMode(m)
	}
	return nil
}

// NewChange returns a Change from original (nil: the file does not exist) to updated.
func NewChange(path, description string, original, updated []byte, mode fs.FileMode) Change {
	c := Change{
		Path:          path,
		Description:   description,
		OriginalBytes: original,
		NewBytes:      updated,
		NewSHA256:     journal.SHA256(updated),
		Mode:          mode,
		Created:       original == nil,
	}
	if original != nil {
		c.OriginalSHA256 = journal.SHA256(original)
	}
	return c
}

// Diff returns a unified-style line diff of the change (for plans shown to people).
func (c Change) Diff() string {
	return lineDiff(c.Path, c.OriginalBytes, c.NewBytes)
}

// Plan is everything that switching tracing on in one component on one node changes.
type Plan struct {
	Node      string    `json:"node,omitempty"`
	Component Component `json:"component"`
	Version   Version   `json:"version"`
	Method    Method    `json:"method,omitempty"`
	// Flags are the command-line arguments added or replaced (kube-apiserver, etcd).
	Flags []string `json:"flags,omitempty"`
	// RemovedFlags are arguments removed (the other spelling of an etcd flag).
	RemovedFlags []string `json:"removedFlags,omitempty"`
	// Env is the environment set (containerd 2.x).
	Env []EnvVar `json:"env,omitempty"`
	// Settings are configuration keys set, as "key = value" (kubelet, CRI-O, containerd 1.x).
	Settings []string `json:"settings,omitempty"`
	// Changes are the files written, in order.
	Changes []Change `json:"changes,omitempty"`
	Restart Restart  `json:"restart"`
	// AlreadyEnabled is true when tracing is already on: the component is left alone.
	AlreadyEnabled bool   `json:"alreadyEnabled,omitempty"`
	Reason         string `json:"reason,omitempty"`
	// Notes are warnings and facts for the person reading the plan.
	Notes []string `json:"notes,omitempty"`
}

// Default paths on kubeadm-style nodes and in distribution packages.
const (
	DefaultManifestDir       = "/etc/kubernetes/manifests"
	DefaultKubeletConfig     = "/var/lib/kubelet/config.yaml"
	DefaultCRIOConfig        = "/etc/crio/crio.conf"
	DefaultCRIOConfigDir     = "/etc/crio/crio.conf.d"
	DefaultContainerdConfig  = "/etc/containerd/config.toml"
	DefaultSystemdUnitDir    = "/etc/systemd/system"
	SystemdDropInName        = "99-trace-capture.conf"
	TracingConfigFileName    = "trace-capture-apiserver-tracing.yaml"
	defaultContainerdUnit    = "containerd.service"
	defaultKubeletUnit       = "kubelet.service"
	defaultCRIOUnit          = "crio.service"
	createdConfigFileMode    = fs.FileMode(0o644)
	createdTracingConfigMode = fs.FileMode(0o600)
)

// Spec says which component to plan for and where its files are. Paths are node paths; empty
// ones mean the kubeadm or packaging defaults (Default* constants).
type Spec struct {
	Component Component
	// Version of the component. For kube-apiserver and etcd it may be zero: it is then read from
	// the image tag in the manifest (etcd images built from Kubernetes tags need it given).
	Version Version
	// Node is the node's name, recorded in the plan and the journal.
	Node   string
	Target Target

	// ManifestPath is the static-pod manifest (kube-apiserver, etcd); default
	// DefaultManifestDir/<component>.yaml.
	ManifestPath string
	// TracingConfigPath is where kube-apiserver's TracingConfiguration is written; default
	// TracingConfigFileName next to the manifest folder (never inside it).
	TracingConfigPath string

	// KubeletConfigPath is the kubelet's --config file; default DefaultKubeletConfig.
	KubeletConfigPath string
	// KubeletConfigDir is the kubelet's --config-dir, if any: its drop-ins are checked for a
	// tracing section.
	KubeletConfigDir string

	// CRIOConfigPath and CRIOConfigDir are CRI-O's --config and --config-dir.
	CRIOConfigPath string
	CRIOConfigDir  string

	// ContainerdConfigPath is containerd's --config (1.6/1.7); default DefaultContainerdConfig.
	ContainerdConfigPath string
	// EnvFile, for containerd 2.x, is an environment file that the service's supervisor reads
	// when it restarts the process; when empty a systemd drop-in is written instead.
	EnvFile string
	// SystemdUnit is the unit that runs the service (containerd 2.x drop-in; also reported in
	// Restart); default "<component>.service".
	SystemdUnit string
	// SystemdUnitDir is where unit drop-ins go; default DefaultSystemdUnitDir.
	SystemdUnitDir string

	// ProcessArgs and ProcessEnv are the running process's command line and environment, if
	// known (see FindProcesses). They show settings that override files.
	ProcessArgs []string
	ProcessEnv  []string
}

// BuildPlan reads the component's files below hostRoot and returns the plan that switches its
// tracing on. It changes nothing.
func BuildPlan(ctx context.Context, hostRoot string, s Spec) (Plan, error) {
	if err := ctx.Err(); err != nil {
		return Plan{}, err
	}
	if err := s.Target.Validate(); err != nil {
		return Plan{}, fmt.Errorf("plan %s: %w", s.Component, err)
	}
	var p Plan
	var err error
	switch s.Component {
	case APIServer, Etcd:
		p, err = planStaticPod(hostRoot, s)
	case Kubelet:
		p, err = planKubelet(hostRoot, s)
	case CRIO:
		p, err = planCRIO(hostRoot, s)
	case Containerd:
		p, err = planContainerd(hostRoot, s)
	default:
		err = fmt.Errorf("unknown component %q", s.Component)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("plan %s: %w", s.Component, err)
	}
	p.Node, p.Component = s.Node, s.Component
	if p.AlreadyEnabled {
		p.Changes, p.Flags, p.Env, p.Settings = nil, nil, nil, nil
		p.Restart = Restart{Kind: RestartNone, Service: string(s.Component), Description: "tracing is already on: left alone"}
	}
	for _, c := range p.Changes {
		if err := journal.CheckNodePath(c.Path); err != nil {
			return Plan{}, fmt.Errorf("plan %s: %w", s.Component, err)
		}
	}
	return p, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// readNode reads a node file (nil data: it does not exist).
func readNode(hostRoot, p string) ([]byte, error) {
	if err := journal.CheckNodePath(p); err != nil {
		return nil, err
	}
	rp, err := journal.Resolve(hostRoot, p)
	if err != nil {
		return nil, err
	}
	st, err := journal.ReadFile(hostRoot, rp)
	if err != nil {
		return nil, err
	}
	return st.Data, nil
}

func planStaticPod(hostRoot string, s Spec) (Plan, error) {
	manifest := orDefault(s.ManifestPath, filepath.Join(DefaultManifestDir, string(s.Component)+".yaml"))
	data, err := readNode(hostRoot, manifest)
	if err != nil {
		return Plan{}, err
	}
	if data == nil {
		return Plan{}, fmt.Errorf("static pod manifest %s: %w", manifest, fs.ErrNotExist)
	}
	edit := StaticPodEdit{Component: s.Component, Version: s.Version, Target: s.Target}
	var cfgBytes []byte
	if s.Component == APIServer {
		edit.TracingConfigPath = orDefault(s.TracingConfigPath, filepath.Join(filepath.Dir(filepath.Dir(manifest)), TracingConfigFileName))
		if filepath.Dir(edit.TracingConfigPath) == filepath.Dir(manifest) {
			return Plan{}, fmt.Errorf("the tracing configuration %s must not be in the static pod folder (the kubelet would load it as a pod)", edit.TracingConfigPath)
		}
	}
	res, err := EditStaticPod(data, edit)
	if err != nil {
		return Plan{}, fmt.Errorf("%s: %w", manifest, err)
	}
	p := Plan{
		Version:        res.Version,
		Method:         MethodStaticPod,
		Flags:          res.Flags,
		RemovedFlags:   res.Removed,
		AlreadyEnabled: res.AlreadyEnabled,
		Reason:         res.Reason,
		Notes:          res.Notes,
	}
	if res.AlreadyEnabled {
		return p, nil
	}
	if s.Component == APIServer {
		cfgBytes, err = APIServerTracingConfig(res.Version, s.Target)
		if err != nil {
			return Plan{}, err
		}
		existing, err := readNode(hostRoot, edit.TracingConfigPath)
		if err != nil {
			return Plan{}, err
		}
		if existing != nil {
			// A file of that name is left from an interrupted run without a journal, or is
			// someone else's: replace it, and restore puts it back.
			p.Notes = append(p.Notes, edit.TracingConfigPath+" exists already; it is replaced during the capture and put back after")
		}
		p.Changes = append(p.Changes, NewChange(edit.TracingConfigPath, "kube-apiserver TracingConfiguration", existing, cfgBytes, createdTracingConfigMode))
		p.Restart = Restart{Kind: RestartStaticPod, Service: string(APIServer), ExpectedUnavailabilitySeconds: 60,
			Description: "the kubelet recreates the kube-apiserver static pod when its manifest changes; this node's API server is unavailable for about 10-60 s"}
	} else {
		p.Restart = Restart{Kind: RestartStaticPod, Service: string(Etcd), ExpectedUnavailabilitySeconds: 30,
			Description: "the kubelet recreates the etcd static pod when its manifest changes; this member is unavailable for about 10-30 s (restart one member at a time to keep quorum)"}
	}
	p.Changes = append(p.Changes, NewChange(manifest, string(s.Component)+" static pod manifest", data, res.Manifest, 0o600))
	return p, nil
}

func planKubelet(hostRoot string, s Spec) (Plan, error) {
	if s.Version.IsZero() {
		return Plan{}, errors.New("the kubelet version is needed (from the node status)")
	}
	path := orDefault(s.KubeletConfigPath, DefaultKubeletConfig)
	data, err := readNode(hostRoot, path)
	if err != nil {
		return Plan{}, err
	}
	if data == nil {
		return Plan{}, fmt.Errorf("kubelet configuration %s: %w", path, fs.ErrNotExist)
	}
	p := Plan{Version: s.Version, Method: MethodKubeletConfig}
	if s.KubeletConfigDir != "" {
		files, err := readDropIns(hostRoot, s.KubeletConfigDir, ".conf")
		if err != nil {
			return Plan{}, err
		}
		for _, f := range files {
			obj, err := decodeGeneric(f.Data)
			if err != nil {
				return Plan{}, fmt.Errorf("%s: %w", f.Path, err)
			}
			if tr, ok := obj["tracing"]; ok && tr != nil {
				p.AlreadyEnabled, p.Reason = true, "the kubelet drop-in "+f.Path+" has a tracing section"
				return p, nil
			}
		}
	}
	res, err := EditKubeletConfig(data, s.Version, s.Target)
	if err != nil {
		return Plan{}, fmt.Errorf("%s: %w", path, err)
	}
	p.AlreadyEnabled, p.Reason, p.Notes = res.AlreadyEnabled, res.Reason, res.Notes
	if res.AlreadyEnabled {
		return p, nil
	}
	p.Settings = []string{"tracing.endpoint = " + s.Target.Endpoint, fmt.Sprintf("tracing.samplingRatePerMillion = %d", s.Target.SamplingRatePerMillion)}
	if !s.Version.AtLeast(1, 27, 0) {
		p.Settings = append(p.Settings, "featureGates.KubeletTracing = true")
	}
	p.Changes = []Change{NewChange(path, "KubeletConfiguration", data, res.Config, createdConfigFileMode)}
	p.Restart = Restart{Kind: RestartService, Service: string(Kubelet), Unit: orDefault(s.SystemdUnit, defaultKubeletUnit), ExpectedUnavailabilitySeconds: 10,
		Description: "the kubelet restarts (running pods are not touched); node status updates pause for a few seconds"}
	return p, nil
}

// readDropIns reads the regular, non-dot files of a folder (with the suffix, if given) in
// lexical order. A missing folder holds none.
func readDropIns(hostRoot, dir, suffix string) ([]configFile, error) {
	rd, err := journal.Resolve(hostRoot, dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(journal.HostPath(hostRoot, rd))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, suffix) {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var files []configFile
	for _, n := range names {
		p := filepath.Join(dir, n)
		data, err := readNode(hostRoot, p)
		if err != nil {
			if strings.Contains(err.Error(), "not a regular file") {
				continue
			}
			return nil, err
		}
		if data != nil {
			files = append(files, configFile{Path: p, Data: data})
		}
	}
	return files, nil
}

func planCRIO(hostRoot string, s Spec) (Plan, error) {
	if s.Version.IsZero() {
		return Plan{}, errors.New("the CRI-O version is needed (from the node status)")
	}
	if err := CheckCRIOVersion(s.Version); err != nil {
		return Plan{}, err
	}
	mainPath := orDefault(s.CRIOConfigPath, DefaultCRIOConfig)
	dir := orDefault(s.CRIOConfigDir, DefaultCRIOConfigDir)
	dropIn := filepath.Join(dir, CRIODropInName)
	var files []configFile
	data, err := readNode(hostRoot, mainPath)
	if err != nil {
		return Plan{}, err
	}
	if data != nil {
		files = append(files, configFile{Path: mainPath, Data: data})
	}
	dropIns, err := readDropIns(hostRoot, dir, "")
	if err != nil {
		return Plan{}, err
	}
	var existing []byte
	for _, f := range dropIns {
		if f.Path == dropIn {
			existing = f.Data
			continue // ours, left from an interrupted run: it is replaced
		}
		files = append(files, f)
	}
	on, reason, later, err := crioTracing(files, s.ProcessArgs, s.ProcessEnv, dropIn)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Version: s.Version, Method: MethodCRIODropIn}
	if on {
		p.AlreadyEnabled, p.Reason = true, "CRI-O tracing is already on: "+reason
		return p, nil
	}
	if len(later) > 0 {
		return Plan{}, fmt.Errorf("%w: %s sorts after %s and sets [crio.tracing]; it would override the capture's settings", ErrUnsupported, strings.Join(later, ", "), CRIODropInName)
	}
	if _, ok := FlagValue(s.ProcessArgs, "tracing-endpoint"); ok {
		p.Notes = append(p.Notes, "CRI-O is started with --tracing-endpoint, which overrides the drop-in's endpoint")
	}
	body, err := CRIODropIn(s.Version, s.Target)
	if err != nil {
		return Plan{}, err
	}
	if existing != nil {
		p.Notes = append(p.Notes, dropIn+" exists already; it is replaced during the capture and put back after")
	}
	p.Settings = []string{"crio.tracing.enable_tracing = true", "crio.tracing.tracing_endpoint = " + s.Target.Endpoint,
		fmt.Sprintf("crio.tracing.tracing_sampling_rate_per_million = %d", s.Target.SamplingRatePerMillion)}
	p.Changes = []Change{NewChange(dropIn, "CRI-O drop-in", existing, body, createdConfigFileMode)}
	p.Restart = Restart{Kind: RestartService, Service: string(CRIO), Unit: orDefault(s.SystemdUnit, defaultCRIOUnit), ExpectedUnavailabilitySeconds: 10,
		Description: "CRI-O restarts (running containers keep running under conmon); CRI calls fail for a few seconds"}
	return p, nil
}

func planContainerd(hostRoot string, s Spec) (Plan, error) {
	if s.Version.IsZero() {
		return Plan{}, errors.New("the containerd version is needed (from the node status)")
	}
	if err := CheckContainerdVersion(s.Version); err != nil {
		return Plan{}, err
	}
	unit := orDefault(s.SystemdUnit, defaultContainerdUnit)
	restart := Restart{Kind: RestartService, Service: string(Containerd), Unit: unit, ExpectedUnavailabilitySeconds: 10,
		Description: "containerd restarts (running containers keep running under their shims); CRI calls fail for a few seconds"}
	p := Plan{Version: s.Version}
	if s.Version.Major < 2 {
		p.Method = MethodContainerdConfig
		path := orDefault(s.ContainerdConfigPath, DefaultContainerdConfig)
		data, err := readNode(hostRoot, path)
		if err != nil {
			return Plan{}, err
		}
		if on, reason := containerdTracingEnv(s.ProcessEnv); on {
			p.AlreadyEnabled, p.Reason = true, "containerd tracing is already on: "+reason
			return p, nil
		}
		res, err := EditContainerdConfig(data, s.Version, s.Target)
		if err != nil {
			return Plan{}, fmt.Errorf("%s: %w", path, err)
		}
		p.AlreadyEnabled, p.Reason, p.Notes = res.AlreadyEnabled, res.Reason, res.Notes
		if res.AlreadyEnabled {
			return p, nil
		}
		p.Settings = res.Settings
		p.Changes = []Change{NewChange(path, "containerd config.toml", data, res.Config, createdConfigFileMode)}
		p.Restart = restart
		return p, nil
	}
	if on, reason := containerdTracingEnv(s.ProcessEnv); on {
		p.AlreadyEnabled, p.Reason = true, "containerd tracing is already on: "+reason
		return p, nil
	}
	if s.ProcessEnv == nil {
		p.Notes = append(p.Notes, "containerd's environment was not read: tracing that is already on through it cannot be detected")
	}
	env, err := ContainerdEnv(s.Version, s.Target)
	if err != nil {
		return Plan{}, err
	}
	p.Env = env
	if s.EnvFile != "" {
		p.Method = MethodEnvFile
		data, err := readNode(hostRoot, s.EnvFile)
		if err != nil {
			return Plan{}, err
		}
		if on, reason := containerdTracingEnv(envFileVars(data)); on {
			p.AlreadyEnabled, p.Reason = true, "containerd tracing is already on: "+reason+" (from "+s.EnvFile+")"
			return p, nil
		}
		updated, err := EditEnvFile(data, env)
		if err != nil {
			return Plan{}, err
		}
		restart.Unit = ""
		restart.Description = "containerd is restarted by signalling it; its supervisor starts it again with " + s.EnvFile + " (running containers keep running under their shims)"
		p.Changes = []Change{NewChange(s.EnvFile, "containerd environment file", data, updated, createdConfigFileMode)}
		p.Restart = restart
		return p, nil
	}
	p.Method = MethodSystemdDropIn
	unitDir := orDefault(s.SystemdUnitDir, DefaultSystemdUnitDir)
	dir := filepath.Join(unitDir, unit+".d")
	dropIn := filepath.Join(dir, SystemdDropInName)
	dropIns, err := readDropIns(hostRoot, dir, ".conf")
	if err != nil {
		return Plan{}, err
	}
	var existing []byte
	for _, f := range dropIns {
		if f.Path == dropIn {
			existing = f.Data
			continue
		}
		if f.Path > dropIn && strings.Contains(string(f.Data), "OTEL_") {
			p.Notes = append(p.Notes, f.Path+" sorts after the capture's drop-in and mentions OTEL_ variables; it may override them")
		}
	}
	if existing != nil {
		p.Notes = append(p.Notes, dropIn+" exists already; it is replaced during the capture and put back after")
	}
	restart.DaemonReload = true
	restart.Description = "systemd reloads its units and restarts " + unit + " (running containers keep running under their shims); CRI calls fail for a few seconds"
	p.Changes = []Change{NewChange(dropIn, "containerd systemd drop-in", existing, SystemdDropIn(env), createdConfigFileMode)}
	p.Restart = restart
	return p, nil
}

// envFileVars reads KEY=VALUE assignments from an environment file (quotes removed).
func envFileVars(data []byte) []string {
	var env []string
	for _, l := range strings.Split(string(data), "\n") {
		s := strings.TrimSpace(l)
		s = strings.TrimPrefix(s, "export ")
		if s == "" || s[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		env = append(env, strings.TrimSpace(k)+"="+v)
	}
	return env
}
