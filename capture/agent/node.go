package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/trace-capture/trace-capture/capture/enable"
	"github.com/trace-capture/trace-capture/capture/journal"
)

// Default sockets of the runtimes, checked after a restart when they exist.
const (
	defaultContainerdSocket = "/run/containerd/containerd.sock"
	defaultCRIOSocket       = "/var/run/crio/crio.sock"
	defaultKubeletHealthz   = 10248
	maxManifestBytes        = 1 << 20
)

// componentSpec is what the node says about one component: how to plan its change and how to tell
// it is healthy after a restart.
type componentSpec struct {
	spec   enable.Spec
	health HealthCheck
}

// nodeView discovers components on a node below a host root.
type nodeView struct {
	hostRoot, procRoot string
	node               string
	containerdEnvFile  string
}

// kubelet finds the running kubelet and what its command line says.
func (n nodeView) kubelet(ctx context.Context) (*enable.Process, enable.KubeletInfo, error) {
	procs, err := enable.FindProcesses(ctx, n.procRoot, string(enable.Kubelet))
	if err != nil {
		return nil, enable.KubeletInfo{}, err
	}
	if len(procs) == 0 {
		return nil, enable.KubeletInfo{}, nil
	}
	if len(procs) > 1 {
		return nil, enable.KubeletInfo{}, fmt.Errorf("%d kubelet processes run (pids %v)", len(procs), pids(procs))
	}
	info, err := enable.DiscoverKubelet(ctx, n.hostRoot, procs[0])
	if err != nil {
		return nil, enable.KubeletInfo{}, err
	}
	return &procs[0], info, nil
}

func pids(ps []enable.Process) []int {
	out := make([]int, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.PID)
	}
	return out
}

// specs returns, for each requested component in enable order, its spec, or why it is skipped.
func (n nodeView) specs(ctx context.Context, req PlanRequest, target enable.Target) ([]componentSpec, []Skip) {
	var out []componentSpec
	var skips []Skip
	kproc, kinfo, kerr := n.kubelet(ctx)
	manifestDir := kinfo.StaticPodPath
	if manifestDir == "" {
		manifestDir = enable.DefaultManifestDir
	}
	version := func(c enable.Component) (enable.Version, error) {
		s := req.Versions[c]
		if s == "" {
			return enable.Version{}, nil
		}
		return enable.ParseVersion(s)
	}
	for _, c := range enable.Components {
		if !slices.Contains(req.Components, c) {
			continue
		}
		v, err := version(c)
		if err != nil {
			skips = append(skips, Skip{Component: c, Reason: err.Error(), Error: true})
			continue
		}
		base := enable.Spec{Component: c, Version: v, Node: n.node, Target: target}
		var cs componentSpec
		var skip *Skip
		switch c {
		case enable.APIServer, enable.Etcd:
			cs, skip = n.staticPod(base, manifestDir, kerr)
		case enable.Kubelet:
			cs, skip = n.kubeletSpec(base, kproc, kinfo, kerr)
		case enable.Containerd:
			cs, skip = n.containerd(ctx, base)
		case enable.CRIO:
			cs, skip = n.crio(ctx, base)
		}
		if skip != nil {
			skips = append(skips, *skip)
			continue
		}
		out = append(out, cs)
	}
	return out, skips
}

func (n nodeView) staticPod(base enable.Spec, dir string, kerr error) (componentSpec, *Skip) {
	c := base.Component
	path, pod, err := findManifest(n.hostRoot, dir, c)
	if err != nil {
		return componentSpec{}, &Skip{Component: c, Reason: err.Error(), Error: true}
	}
	if path == "" {
		reason := fmt.Sprintf("no static pod of %s in %s: not a control-plane node", c, dir)
		if kerr != nil {
			reason += " (the kubelet's static pod folder could not be read: " + kerr.Error() + ")"
		}
		return componentSpec{}, &Skip{Component: c, Reason: reason}
	}
	base.ManifestPath = path
	return componentSpec{spec: base, health: podHealth(pod, c)}, nil
}

func (n nodeView) kubeletSpec(base enable.Spec, p *enable.Process, info enable.KubeletInfo, kerr error) (componentSpec, *Skip) {
	if kerr != nil {
		return componentSpec{}, &Skip{Component: enable.Kubelet, Reason: kerr.Error(), Error: true}
	}
	if p == nil {
		return componentSpec{}, &Skip{Component: enable.Kubelet, Reason: "the kubelet does not run on this node"}
	}
	if info.ConfigPath == "" {
		return componentSpec{}, &Skip{Component: enable.Kubelet, Reason: "the kubelet runs without --config: there is no KubeletConfiguration file to add tracing to", Error: true}
	}
	base.KubeletConfigPath = info.ConfigPath
	base.KubeletConfigDir = info.ConfigDir
	base.SystemdUnit = p.SystemdUnit
	base.ProcessArgs, base.ProcessEnv = p.Args, p.Env
	return componentSpec{spec: base, health: kubeletHealth(n.hostRoot, info.ConfigPath)}, nil
}

func (n nodeView) containerd(ctx context.Context, base enable.Spec) (componentSpec, *Skip) {
	c := enable.Containerd
	procs, err := enable.FindProcesses(ctx, n.procRoot, string(c))
	if err != nil {
		return componentSpec{}, &Skip{Component: c, Reason: err.Error(), Error: true}
	}
	if len(procs) == 0 {
		return componentSpec{}, &Skip{Component: c, Reason: "containerd does not run on this node"}
	}
	if len(procs) > 1 {
		return componentSpec{}, &Skip{Component: c, Reason: fmt.Sprintf("%d containerd processes run (pids %v)", len(procs), pids(procs)), Error: true}
	}
	p := procs[0]
	info, err := enable.DiscoverContainerd(p)
	if err != nil {
		return componentSpec{}, &Skip{Component: c, Reason: err.Error(), Error: true}
	}
	if base.Version.IsZero() {
		return componentSpec{}, &Skip{Component: c, Reason: "the containerd version is unknown (it comes from the node status)", Error: true}
	}
	base.ContainerdConfigPath = info.ConfigPath
	base.SystemdUnit = p.SystemdUnit
	base.ProcessArgs, base.ProcessEnv = p.Args, p.Env
	if base.Version.Major >= 2 && (p.SystemdUnit == "" || !enable.SystemdRunning(n.hostRoot)) {
		if n.containerdEnvFile == "" {
			return componentSpec{}, &Skip{Component: c, Error: true,
				Reason: "containerd 2.x reads tracing settings only from its environment, and it does not run under systemd here: name the environment file its supervisor reads (agent --containerd-env-file)"}
		}
		base.EnvFile = n.containerdEnvFile
	}
	return componentSpec{spec: base, health: socketHealth(n.hostRoot, n.runtimeSocket(ctx, defaultContainerdSocket))}, nil
}

func (n nodeView) crio(ctx context.Context, base enable.Spec) (componentSpec, *Skip) {
	c := enable.CRIO
	procs, err := enable.FindProcesses(ctx, n.procRoot, string(c))
	if err != nil {
		return componentSpec{}, &Skip{Component: c, Reason: err.Error(), Error: true}
	}
	if len(procs) == 0 {
		return componentSpec{}, &Skip{Component: c, Reason: "CRI-O does not run on this node"}
	}
	if len(procs) > 1 {
		return componentSpec{}, &Skip{Component: c, Reason: fmt.Sprintf("%d crio processes run (pids %v)", len(procs), pids(procs)), Error: true}
	}
	p := procs[0]
	info, err := enable.DiscoverCRIO(p)
	if err != nil {
		return componentSpec{}, &Skip{Component: c, Reason: err.Error(), Error: true}
	}
	if base.Version.IsZero() {
		return componentSpec{}, &Skip{Component: c, Reason: "the CRI-O version is unknown (it comes from the node status)", Error: true}
	}
	base.CRIOConfigPath, base.CRIOConfigDir = info.ConfigPath, info.ConfigDir
	base.SystemdUnit = p.SystemdUnit
	base.ProcessArgs, base.ProcessEnv = p.Args, p.Env
	return componentSpec{spec: base, health: socketHealth(n.hostRoot, n.runtimeSocket(ctx, defaultCRIOSocket))}, nil
}

// health returns the health check of a component, for a restart after a restore (the journal
// record says what changed; the node says how to check it).
func (n nodeView) health(ctx context.Context, c enable.Component) HealthCheck {
	switch c {
	case enable.APIServer, enable.Etcd:
		_, info, _ := n.kubelet(ctx)
		dir := info.StaticPodPath
		if dir == "" {
			dir = enable.DefaultManifestDir
		}
		if _, pod, err := findManifest(n.hostRoot, dir, c); err == nil && pod != nil {
			return podHealth(pod, c)
		}
	case enable.Kubelet:
		if _, info, err := n.kubelet(ctx); err == nil && info.ConfigPath != "" {
			return kubeletHealth(n.hostRoot, info.ConfigPath)
		}
		return HealthCheck{URL: fmt.Sprintf("http://127.0.0.1:%d/healthz", defaultKubeletHealthz)}
	case enable.Containerd:
		return socketHealth(n.hostRoot, n.runtimeSocket(ctx, defaultContainerdSocket))
	case enable.CRIO:
		return socketHealth(n.hostRoot, n.runtimeSocket(ctx, defaultCRIOSocket))
	}
	return HealthCheck{}
}

// findManifest finds the static pod manifest of c in dir: "<c>.yaml" or any non-dot file whose
// pod has a container named c. It returns "" when there is none.
func findManifest(hostRoot, dir string, c enable.Component) (string, *corev1.Pod, error) {
	rdir, err := journal.Resolve(hostRoot, dir)
	if err != nil {
		return "", nil, err
	}
	entries, err := os.ReadDir(journal.HostPath(hostRoot, rdir))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("read static pod folder %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue
		}
		names = append(names, e.Name())
	}
	sort.SliceStable(names, func(i, j int) bool { // the conventional name first
		return names[i] == string(c)+".yaml" && names[j] != string(c)+".yaml"
	})
	for _, name := range names {
		p := filepath.Join(dir, name)
		st, err := journal.ReadFile(hostRoot, p)
		if err != nil || !st.Exists || len(st.Data) > maxManifestBytes {
			continue
		}
		var pod corev1.Pod
		if err := yaml.Unmarshal(st.Data, &pod); err != nil || pod.Kind != "Pod" {
			continue
		}
		for _, ctr := range pod.Spec.Containers {
			if ctr.Name == string(c) {
				return p, &pod, nil
			}
		}
	}
	return "", nil, nil
}

// podHealth turns the container's readiness probe (else its startup, else its liveness probe)
// into a health check, as the kubelet would run it.
func podHealth(pod *corev1.Pod, c enable.Component) HealthCheck {
	if pod == nil {
		return HealthCheck{}
	}
	for _, ctr := range pod.Spec.Containers {
		if ctr.Name != string(c) {
			continue
		}
		for _, p := range []*corev1.Probe{ctr.ReadinessProbe, ctr.StartupProbe, ctr.LivenessProbe} {
			if p == nil || p.HTTPGet == nil {
				continue
			}
			g := p.HTTPGet
			port := g.Port.IntValue()
			if port == 0 && g.Port.StrVal != "" {
				for _, cp := range ctr.Ports {
					if cp.Name == g.Port.StrVal {
						port = int(cp.ContainerPort)
					}
				}
			}
			if port == 0 {
				continue
			}
			host := g.Host
			if host == "" {
				host = "127.0.0.1"
			}
			scheme := strings.ToLower(string(g.Scheme))
			if scheme == "" {
				scheme = "http"
			}
			path := g.Path
			if !strings.HasPrefix(path, "/") {
				path = "/" + path
			}
			return HealthCheck{URL: scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path}
		}
	}
	return HealthCheck{}
}

// kubeletHealth reads healthzBindAddress and healthzPort from the kubelet's configuration.
func kubeletHealth(hostRoot, configPath string) HealthCheck {
	host, port := "127.0.0.1", defaultKubeletHealthz
	if st, err := journal.ReadFile(hostRoot, configPath); err == nil && st.Exists {
		var cfg struct {
			HealthzBindAddress string `json:"healthzBindAddress"`
			HealthzPort        *int   `json:"healthzPort"`
		}
		if yaml.Unmarshal(st.Data, &cfg) == nil {
			if cfg.HealthzPort != nil {
				port = *cfg.HealthzPort
			}
			if cfg.HealthzBindAddress != "" && cfg.HealthzBindAddress != "0.0.0.0" && cfg.HealthzBindAddress != "::" {
				host = cfg.HealthzBindAddress
			}
		}
	}
	if port <= 0 {
		return HealthCheck{}
	}
	return HealthCheck{URL: "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/healthz"}
}

// runtimeSocket is the container runtime's socket as the kubelet's configuration names it, else
// def.
func (n nodeView) runtimeSocket(ctx context.Context, def string) string {
	_, info, err := n.kubelet(ctx)
	if err != nil || info.ConfigPath == "" {
		return def
	}
	st, err := journal.ReadFile(n.hostRoot, info.ConfigPath)
	if err != nil || !st.Exists {
		return def
	}
	var cfg struct {
		ContainerRuntimeEndpoint string `json:"containerRuntimeEndpoint"`
	}
	if yaml.Unmarshal(st.Data, &cfg) != nil {
		return def
	}
	if p, ok := strings.CutPrefix(cfg.ContainerRuntimeEndpoint, "unix://"); ok && filepath.IsAbs(p) && strings.Contains(filepath.Base(p), strings.TrimSuffix(filepath.Base(def), ".sock")) {
		return filepath.Clean(p)
	}
	return def
}

// socketHealth checks the socket if it exists on the node now.
func socketHealth(hostRoot, sock string) HealthCheck {
	if fi, err := os.Stat(journal.HostPath(hostRoot, sock)); err == nil && fi.Mode()&fs.ModeSocket != 0 {
		return HealthCheck{Socket: sock}
	}
	return HealthCheck{}
}
