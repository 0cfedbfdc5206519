// Package fakenode builds, for tests, the root file system of a node in a temporary folder: real
// kubeadm static-pod manifests and kubelet, containerd and CRI-O configuration files from the
// repository's testdata/nodeconfigs, and a fake proc file system in which the node's processes
// (kubelet, containerd, crio, kube-apiserver, etcd) "run" with their command lines.
package fakenode

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Runtime is the node's container runtime.
type Runtime string

// The runtimes.
const (
	Containerd2  Runtime = "containerd-2"
	Containerd17 Runtime = "containerd-1.7"
	CRIO         Runtime = "crio"
)

// Options describes the node.
type Options struct {
	Name string
	// ControlPlane adds kube-apiserver (1.37) and etcd (EtcdManifest) static pods.
	ControlPlane bool
	// EtcdManifest is the file name in testdata/nodeconfigs/kubeadm-1.37; "" means etcd-3.6.yaml.
	EtcdManifest string
	Runtime      Runtime
	// Systemd makes systemd the service manager: /run/systemd/system exists and the services are
	// in .service cgroups. Without it the services are children of a supervisor (pid 4000).
	Systemd bool
	// ContainerdEnvFile, without systemd, is the environment file containerd's supervisor reads.
	ContainerdEnvFile string
}

// Node is a fake node.
type Node struct {
	Name string
	// Root is the host root; Proc its proc file system.
	Root, Proc string
	// Versions are what the node status reports, by component name.
	Versions map[string]string
	t        testing.TB
}

// Known PIDs.
const (
	PIDSupervisor = 4000
	PIDKubelet    = 4100
	PIDRuntime    = 4200
	PIDAPIServer  = 4300
	PIDEtcd       = 4400
)

// RepoRoot returns the repository's root folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

func nodeconfig(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "testdata", "nodeconfigs", rel))
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	return b
}

// New builds the node below dir.
func New(t testing.TB, dir string, o Options) *Node {
	t.Helper()
	if o.Name == "" {
		o.Name = "node-1"
	}
	n := &Node{Name: o.Name, Root: filepath.Join(dir, "root"), Proc: filepath.Join(dir, "proc"), Versions: map[string]string{"kubelet": "1.37.2"}, t: t}
	for _, d := range []string{"etc/kubernetes/manifests", "var/lib/kubelet", "run", "tmp"} {
		n.mkdir(d)
	}
	n.mkdir("../proc")
	n.write("/var/lib/kubelet/config.yaml", nodeconfig(t, "kubeadm-1.37/kubelet-config.yaml"), 0o644)
	n.write("/var/lib/kubelet/kubeadm-flags.env", nodeconfig(t, "kubeadm-1.37/kubeadm-flags.env"), 0o644)
	if o.Systemd {
		n.mkdir("run/systemd/system")
		n.mkdir("etc/systemd/system")
	}
	unit := func(u string) string {
		if o.Systemd {
			return "0::/system.slice/" + u + "\n"
		}
		return "0::/user.slice\n"
	}
	ppid := PIDSupervisor
	if o.Systemd {
		ppid = 1
	}
	if !o.Systemd {
		n.Process(PIDSupervisor, 1, []string{"/bin/sh", "supervise"}, "0::/user.slice\n")
	}
	n.Process(PIDKubelet, ppid, []string{"/usr/bin/kubelet", "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
		"--kubeconfig=/etc/kubernetes/kubelet.conf", "--config=/var/lib/kubelet/config.yaml"}, unit("kubelet.service"))
	switch o.Runtime {
	case Containerd2, "":
		n.Versions["containerd"] = "2.4.2"
		n.write("/etc/containerd/config.toml", nodeconfig(t, "containerd/config-2.x.toml"), 0o644)
		n.Process(PIDRuntime, ppid, []string{"/usr/bin/containerd"}, unit("containerd.service"))
		if o.ContainerdEnvFile != "" {
			n.write(o.ContainerdEnvFile, []byte{}, 0o644)
		}
	case Containerd17:
		n.Versions["containerd"] = "1.7.24"
		n.write("/etc/containerd/config.toml", nodeconfig(t, "containerd/config-1.7.toml"), 0o644)
		n.Process(PIDRuntime, ppid, []string{"/usr/bin/containerd"}, unit("containerd.service"))
	case CRIO:
		n.Versions["crio"] = "1.33.2"
		n.write("/etc/crio/crio.conf", nodeconfig(t, "crio/crio.conf"), 0o644)
		n.write("/etc/crio/crio.conf.d/10-crio.conf", nodeconfig(t, "crio/crio.conf.d/10-crio.conf"), 0o644)
		n.Process(PIDRuntime, ppid, []string{"/usr/bin/crio"}, unit("crio.service"))
	}
	if o.ControlPlane {
		etcd := o.EtcdManifest
		if etcd == "" {
			etcd = "etcd-3.6.yaml"
		}
		n.write("/etc/kubernetes/manifests/kube-apiserver.yaml", nodeconfig(t, "kubeadm-1.37/kube-apiserver.yaml"), 0o600)
		n.write("/etc/kubernetes/manifests/etcd.yaml", nodeconfig(t, "kubeadm-1.37/"+etcd), 0o600)
		n.Process(PIDAPIServer, 4500, []string{"kube-apiserver", "--advertise-address=192.168.122.10"}, "0::/kubepods/burstable/pod1\n")
		n.Process(PIDEtcd, 4501, []string{"etcd", "--name=" + o.Name}, "0::/kubepods/burstable/pod2\n")
	}
	return n
}

func (n *Node) mkdir(rel string) {
	n.t.Helper()
	if err := os.MkdirAll(filepath.Join(n.Root, rel), 0o755); err != nil {
		n.t.Fatal(err)
	}
}

func (n *Node) write(p string, b []byte, mode fs.FileMode) {
	n.t.Helper()
	hp := filepath.Join(n.Root, p)
	if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(hp, b, mode); err != nil {
		n.t.Fatal(err)
	}
}

// WriteFile writes a node file (to simulate someone else changing it).
func (n *Node) WriteFile(p string, b []byte) {
	n.t.Helper()
	n.write(p, b, 0o644)
}

// ReadFile reads a node file.
func (n *Node) ReadFile(p string) []byte {
	n.t.Helper()
	b, err := os.ReadFile(filepath.Join(n.Root, p))
	if err != nil {
		n.t.Fatal(err)
	}
	return b
}

// Process makes a process "run": it writes /proc/PID/{cmdline,comm,environ,cgroup,stat} and a
// cwd link to "/".
func (n *Node) Process(pid, ppid int, args []string, cgroup string) {
	n.t.Helper()
	d := filepath.Join(n.Proc, strconv.Itoa(pid))
	if err := os.MkdirAll(d, 0o755); err != nil {
		n.t.Fatal(err)
	}
	comm := filepath.Base(args[0])
	if len(comm) > 15 {
		comm = comm[:15]
	}
	files := map[string]string{
		"cmdline": strings.Join(args, "\x00") + "\x00",
		"comm":    comm + "\n",
		"environ": "PATH=/usr/bin\x00",
		"cgroup":  cgroup,
		"stat":    fmt.Sprintf("%d (%s) S %d %d %d 0 -1", pid, comm, ppid, pid, pid),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o644); err != nil {
			n.t.Fatal(err)
		}
	}
	_ = os.Remove(filepath.Join(d, "cwd"))
	if err := os.Symlink("/", filepath.Join(d, "cwd")); err != nil {
		n.t.Fatal(err)
	}
}

// Kill makes a process vanish.
func (n *Node) Kill(pid int) {
	n.t.Helper()
	if err := os.RemoveAll(filepath.Join(n.Proc, strconv.Itoa(pid))); err != nil {
		n.t.Fatal(err)
	}
}

// Replace simulates a restart: the process with pid old vanishes and newPID runs the same
// command line.
func (n *Node) Replace(old, newPID int) {
	n.t.Helper()
	d := filepath.Join(n.Proc, strconv.Itoa(old))
	cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
	if err != nil {
		n.t.Fatal(err)
	}
	cgroup, _ := os.ReadFile(filepath.Join(d, "cgroup"))
	stat, _ := os.ReadFile(filepath.Join(d, "stat"))
	ppid := 1
	if f := strings.Fields(string(stat)); len(f) > 3 {
		ppid, _ = strconv.Atoi(f[3])
	}
	args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	n.Kill(old)
	n.Process(newPID, ppid, args, string(cgroup))
}

// Snapshot returns every file and folder below the host root with its SHA-256 ("dir" for
// folders), except the folders listed (node paths, such as the journal).
func (n *Node) Snapshot(except ...string) map[string]string {
	n.t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(n.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, n.Root), "/")
		for _, e := range except {
			if rel == e || strings.HasPrefix(rel, e+"/") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := sha256.Sum256(b)
		fi, _ := d.Info()
		out[rel] = hex.EncodeToString(s[:]) + " " + fi.Mode().String()
		return nil
	})
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// Diff lists the differences between two snapshots, sorted; empty when equal.
func Diff(before, after map[string]string) []string {
	var out []string
	for p, v := range before {
		if w, ok := after[p]; !ok {
			out = append(out, "removed "+p)
		} else if w != v {
			out = append(out, "changed "+p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			out = append(out, "added "+p)
		}
	}
	sort.Strings(out)
	return out
}
