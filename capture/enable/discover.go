package enable

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/trace-capture/trace-capture/capture/journal"
)

// Process is a running process, as seen in a proc file system.
type Process struct {
	PID  int      `json:"pid"`
	Args []string `json:"args"`
	// Env is the process environment; nil when it could not be read.
	Env []string `json:"-"`
	// Cwd is the process's working directory (its own view); "" when unknown.
	Cwd string `json:"cwd,omitempty"`
	// SystemdUnit is the systemd service whose cgroup holds the process ("kubelet.service"); ""
	// when it is not in a service cgroup (a supervisor loop, a container).
	SystemdUnit string `json:"systemdUnit,omitempty"`
	// HostMountNS is true when the process shares PID 1's mount namespace, so the paths on its
	// command line are node paths (false for a process in a container, or when unknown).
	HostMountNS bool `json:"hostMountNS"`
}

const maxProcFile = 1 << 20

// FindProcesses returns, sorted by PID, the processes under procRoot ("/proc", or "/host/proc"
// in a pod) whose program is name: the base name of argv[0], or the kernel's comm. Processes that
// vanish while being read are skipped.
func FindProcesses(ctx context.Context, procRoot, name string) ([]Process, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("find %s processes: %w", name, err)
	}
	initMnt, _ := os.Readlink(filepath.Join(procRoot, "1", "ns", "mnt"))
	var out []Process
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		dir := filepath.Join(procRoot, e.Name())
		cmdline, err := readSmall(filepath.Join(dir, "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue // kernel thread, gone, or not readable
		}
		args := ParseCmdline(cmdline)
		if len(args) == 0 {
			continue
		}
		match := filepath.Base(args[0]) == name
		if !match {
			if comm, err := readSmall(filepath.Join(dir, "comm")); err == nil {
				match = strings.TrimSpace(string(comm)) == name
			}
		}
		if !match {
			continue
		}
		p := Process{PID: pid, Args: args}
		if env, err := readSmall(filepath.Join(dir, "environ")); err == nil {
			p.Env = ParseEnviron(env)
			if p.Env == nil {
				p.Env = []string{}
			}
		}
		if cwd, err := os.Readlink(filepath.Join(dir, "cwd")); err == nil {
			p.Cwd = cwd
		}
		if cg, err := readSmall(filepath.Join(dir, "cgroup")); err == nil {
			p.SystemdUnit = SystemdUnitFromCgroup(cg)
		}
		if mnt, err := os.Readlink(filepath.Join(dir, "ns", "mnt")); err == nil && initMnt != "" {
			p.HostMountNS = mnt == initMnt
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out, nil
}

func readSmall(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxProcFile))
}

// SystemdUnitFromCgroup returns the systemd service in the contents of /proc/PID/cgroup
// ("0::/system.slice/containerd.service" on cgroup v2, "1:name=systemd:/system.slice/..." on v1),
// or "".
func SystemdUnitFromCgroup(b []byte) string {
	unit := ""
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] != "0" && parts[1] != "name=systemd" {
			continue
		}
		for _, seg := range strings.Split(parts[2], "/") {
			if strings.HasSuffix(seg, ".service") && len(seg) > len(".service") {
				unit = seg
			}
		}
		if parts[1] == "name=systemd" && unit != "" {
			return unit
		}
	}
	return unit
}

// SystemdRunning tells whether systemd is the service manager of the node below hostRoot (the
// test systemd's own sd_booted() uses).
func SystemdRunning(hostRoot string) bool {
	fi, err := os.Stat(journal.HostPath(hostRoot, "/run/systemd/system"))
	return err == nil && fi.IsDir()
}

// KubeletInfo is what the kubelet's command line and configuration say about its files.
type KubeletInfo struct {
	// ConfigPath is the --config file (node path); "" when the kubelet runs on flags only.
	ConfigPath string `json:"configPath,omitempty"`
	// ConfigDir is the --config-dir folder, if any.
	ConfigDir string `json:"configDir,omitempty"`
	// StaticPodPath is the static-pod folder: --pod-manifest-path, else the last staticPodPath
	// of the drop-ins, else of the config file; "" when the kubelet has none.
	StaticPodPath string `json:"staticPodPath,omitempty"`
	// HostnameOverride is --hostname-override, if given.
	HostnameOverride string `json:"hostnameOverride,omitempty"`
}

// DiscoverKubelet reads the kubelet's command line (see FindProcesses) and its configuration
// files below hostRoot. Relative paths are resolved as the kubelet does: flags against its working
// directory, paths in a configuration file against that file's folder.
func DiscoverKubelet(ctx context.Context, hostRoot string, p Process) (KubeletInfo, error) {
	if err := ctx.Err(); err != nil {
		return KubeletInfo{}, err
	}
	_, flags := splitProgram(p.Args)
	var info KubeletInfo
	abs := func(v string) (string, error) {
		if filepath.IsAbs(v) {
			return filepath.Clean(v), nil
		}
		if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
			return "", fmt.Errorf("relative path %q and the kubelet's working directory is unknown", v)
		}
		return filepath.Join(p.Cwd, v), nil
	}
	var err error
	if v, ok := FlagValue(flags, "config"); ok && v != "" {
		if info.ConfigPath, err = abs(v); err != nil {
			return KubeletInfo{}, fmt.Errorf("discover kubelet: --config: %w", err)
		}
	}
	if v, ok := FlagValue(flags, "config-dir"); ok && v != "" {
		if info.ConfigDir, err = abs(v); err != nil {
			return KubeletInfo{}, fmt.Errorf("discover kubelet: --config-dir: %w", err)
		}
	}
	info.HostnameOverride, _ = FlagValue(flags, "hostname-override")
	staticFrom := func(path string, data []byte) error {
		obj, err := decodeGeneric(data)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if sp, ok := obj["staticPodPath"].(string); ok && sp != "" {
			if !filepath.IsAbs(sp) {
				sp = filepath.Join(filepath.Dir(path), sp)
			}
			info.StaticPodPath = filepath.Clean(sp)
		}
		return nil
	}
	if info.ConfigPath != "" {
		data, err := readNode(hostRoot, info.ConfigPath)
		if err != nil {
			return KubeletInfo{}, fmt.Errorf("discover kubelet: %w", err)
		}
		if data == nil {
			return KubeletInfo{}, fmt.Errorf("discover kubelet: %s: %w", info.ConfigPath, fs.ErrNotExist)
		}
		if err := staticFrom(info.ConfigPath, data); err != nil {
			return KubeletInfo{}, fmt.Errorf("discover kubelet: %w", err)
		}
	}
	if info.ConfigDir != "" {
		files, err := readDropIns(hostRoot, info.ConfigDir, ".conf")
		if err != nil {
			return KubeletInfo{}, fmt.Errorf("discover kubelet: %w", err)
		}
		for _, f := range files {
			if err := staticFrom(f.Path, f.Data); err != nil {
				return KubeletInfo{}, fmt.Errorf("discover kubelet: %w", err)
			}
		}
	}
	if v, ok := FlagValue(flags, "pod-manifest-path"); ok && v != "" {
		if info.StaticPodPath, err = abs(v); err != nil {
			return KubeletInfo{}, fmt.Errorf("discover kubelet: --pod-manifest-path: %w", err)
		}
	}
	return info, nil
}

// ContainerdInfo is what containerd's command line says about its files.
type ContainerdInfo struct {
	// ConfigPath is --config/-c, else DefaultContainerdConfig.
	ConfigPath string `json:"configPath"`
}

// DiscoverContainerd reads containerd's command line.
func DiscoverContainerd(p Process) (ContainerdInfo, error) {
	_, flags := splitProgram(p.Args)
	info := ContainerdInfo{ConfigPath: DefaultContainerdConfig}
	for _, name := range []string{"config", "c"} {
		if v, ok := FlagValue(flags, name); ok && v != "" {
			info.ConfigPath = v
		}
	}
	if !filepath.IsAbs(info.ConfigPath) {
		if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
			return ContainerdInfo{}, fmt.Errorf("discover containerd: relative --config %q and unknown working directory", info.ConfigPath)
		}
		info.ConfigPath = filepath.Join(p.Cwd, info.ConfigPath)
	}
	info.ConfigPath = filepath.Clean(info.ConfigPath)
	return info, nil
}

// CRIOInfo is what CRI-O's command line and environment say about its files.
type CRIOInfo struct {
	ConfigPath string `json:"configPath"`
	ConfigDir  string `json:"configDir"`
}

// DiscoverCRIO reads CRI-O's command line (--config/-c, --config-dir/-d) and environment
// (CONTAINER_CONFIG, CONTAINER_CONFIG_DIR); flags win.
func DiscoverCRIO(p Process) (CRIOInfo, error) {
	_, flags := splitProgram(p.Args)
	info := CRIOInfo{ConfigPath: DefaultCRIOConfig, ConfigDir: DefaultCRIOConfigDir}
	if v, ok := envValue(p.Env, "CONTAINER_CONFIG"); ok && v != "" {
		info.ConfigPath = v
	}
	if v, ok := envValue(p.Env, "CONTAINER_CONFIG_DIR"); ok && v != "" {
		info.ConfigDir = v
	}
	for _, name := range []string{"config", "c"} {
		if v, ok := FlagValue(flags, name); ok && v != "" {
			info.ConfigPath = v
		}
	}
	for _, name := range []string{"config-dir", "d"} {
		if v, ok := FlagValue(flags, name); ok && v != "" {
			info.ConfigDir = v
		}
	}
	for _, ptr := range []*string{&info.ConfigPath, &info.ConfigDir} {
		if !filepath.IsAbs(*ptr) {
			if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
				return CRIOInfo{}, fmt.Errorf("discover CRI-O: relative path %q and unknown working directory", *ptr)
			}
			*ptr = filepath.Join(p.Cwd, *ptr)
		}
		*ptr = filepath.Clean(*ptr)
	}
	return info, nil
}
