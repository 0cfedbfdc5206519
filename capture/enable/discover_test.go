package enable

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/trace-capture/trace-capture/capture/journal"
)

// fakeProc writes a /proc/PID entry.
func fakeProc(t *testing.T, procRoot string, pid int, args []string, env []string, comm, cgroup, cwd string) {
	t.Helper()
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cmdline", strings.Join(args, "\x00")+"\x00")
	if env != nil {
		write("environ", strings.Join(env, "\x00")+"\x00")
	}
	write("comm", comm+"\n")
	write("cgroup", cgroup)
	if cwd != "" {
		if err := os.Symlink(cwd, filepath.Join(dir, "cwd")); err != nil {
			t.Fatal(err)
		}
	}
	// Processes with a cwd run in the host's mount namespace, the others in a container's.
	mnt := "mnt:[4026531841]"
	if cwd == "" {
		mnt = "mnt:[4026532999]"
	}
	if err := os.MkdirAll(filepath.Join(dir, "ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mnt, filepath.Join(dir, "ns", "mnt")); err != nil {
		t.Fatal(err)
	}
}

func TestFindProcessesAndDiscover(t *testing.T) {
	proc := t.TempDir()
	// The local cluster: kubelet and containerd under a supervisor loop, no systemd.
	fakeProc(t, proc, 4242, []string{"/scratch/bin/kubelet", "--config", "/scratch/kubelet/config.yaml", "--kubeconfig", "/scratch/etc/kubernetes/kubelet.conf",
		"--root-dir", "/scratch/kubelet/root", "--hostname-override", "localnode", "--node-ip", "10.200.0.1", "-v=1"},
		[]string{"PATH=/usr/bin"}, "kubelet", "12:pids:/user.slice\n1:name=systemd:/user.slice/session-1.scope\n0::/user.slice/session-1.scope\n", "/scratch")
	fakeProc(t, proc, 4100, []string{"/scratch/bin/containerd", "--config", "/scratch/containerd/config.toml"},
		[]string{"OTEL_SERVICE_NAME=containerd"}, "containerd", "0::/\n", "/")
	// A production node: containerd and CRI-O under systemd, and a container whose program is
	// also called kubelet but which is not one (comm differs; argv[0] matches: it is found too).
	fakeProc(t, proc, 900, []string{"/usr/bin/containerd"}, nil, "containerd", "0::/system.slice/containerd.service\n", "/")
	fakeProc(t, proc, 901, []string{"/usr/bin/crio", "--config-dir", "/etc/crio/custom.d"}, []string{"CONTAINER_CONFIG=/etc/crio/crio-site.conf"}, "crio",
		"11:memory:/system.slice/crio.service\n1:name=systemd:/system.slice/crio.service\n", "/")
	fakeProc(t, proc, 77, []string{"sleep", "1000"}, nil, "sleep", "", "")
	fakeProc(t, proc, 1, []string{"/sbin/init"}, nil, "init", "0::/init.scope\n", "/")
	// A kubelet inside a container (kind, a test pod): same name, another mount namespace.
	fakeProc(t, proc, 5000, []string{"/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml"}, nil, "kubelet", "0::/kubepods.slice/x.scope\n", "")
	if err := os.MkdirAll(filepath.Join(proc, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(proc, "12345"), 0o755); err != nil { // a process that went away
		t.Fatal(err)
	}

	kubelets, err := FindProcesses(t.Context(), proc, "kubelet")
	if err != nil || len(kubelets) != 2 || kubelets[0].PID != 4242 || kubelets[0].Cwd != "/scratch" || kubelets[0].SystemdUnit != "" ||
		!kubelets[0].HostMountNS || kubelets[1].PID != 5000 || kubelets[1].HostMountNS {
		t.Fatalf("kubelets %+v %v", kubelets, err)
	}
	ctrds, err := FindProcesses(t.Context(), proc, "containerd")
	if err != nil || len(ctrds) != 2 || ctrds[0].PID != 900 || ctrds[0].SystemdUnit != "containerd.service" || ctrds[1].SystemdUnit != "" {
		t.Fatalf("containerds %+v %v", ctrds, err)
	}
	if ctrds[0].Env != nil || !slices.Equal(ctrds[1].Env, []string{"OTEL_SERVICE_NAME=containerd"}) {
		t.Errorf("environments %q %q", ctrds[0].Env, ctrds[1].Env)
	}

	host := newNode(t, map[string]string{"/scratch/kubelet/config.yaml": "local-cluster/kubelet-config.yaml"})
	info, err := DiscoverKubelet(t.Context(), host.root, kubelets[0])
	if err != nil {
		t.Fatal(err)
	}
	want := KubeletInfo{ConfigPath: "/scratch/kubelet/config.yaml", StaticPodPath: "/scratch/etc/kubernetes/manifests", HostnameOverride: "localnode"}
	if info != want {
		t.Errorf("kubelet %+v, want %+v", info, want)
	}

	ci, err := DiscoverContainerd(ctrds[1])
	if err != nil || ci.ConfigPath != "/scratch/containerd/config.toml" {
		t.Errorf("containerd %+v %v", ci, err)
	}
	ci, err = DiscoverContainerd(ctrds[0])
	if err != nil || ci.ConfigPath != DefaultContainerdConfig {
		t.Errorf("containerd default %+v %v", ci, err)
	}
	crios, err := FindProcesses(t.Context(), proc, "crio")
	if err != nil || len(crios) != 1 || crios[0].SystemdUnit != "crio.service" {
		t.Fatalf("crio %+v %v", crios, err)
	}
	cr, err := DiscoverCRIO(crios[0])
	if err != nil || cr != (CRIOInfo{ConfigPath: "/etc/crio/crio-site.conf", ConfigDir: "/etc/crio/custom.d"}) {
		t.Errorf("crio %+v %v", cr, err)
	}
}

func TestDiscoverKubeletPaths(t *testing.T) {
	host := newNode(t, map[string]string{
		"/etc/kubelet/config.yaml":            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nstaticPodPath: manifests\n",
		"/etc/kubelet/conf.d/10-a.conf":       "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nstaticPodPath: /srv/pods-a\n",
		"/etc/kubelet/conf.d/20-b.conf":       "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nstaticPodPath: /srv/pods-b\n",
		"/etc/kubelet/conf.d/30-ignored.yaml": "staticPodPath: /srv/ignored\n",
		"/etc/kubelet/conf.d/.40-hidden.conf": "staticPodPath: /srv/hidden\n",
		"/var/lib/kubelet/config.json":        `{"kind":"KubeletConfiguration","staticPodPath":"/etc/kubernetes/manifests"}`,
	})
	for _, tc := range []struct {
		name string
		p    Process
		want KubeletInfo
		err  bool
	}{
		{"relative flag and path", Process{Args: []string{"kubelet", "--config=config.yaml"}, Cwd: "/etc/kubelet"},
			KubeletInfo{ConfigPath: "/etc/kubelet/config.yaml", StaticPodPath: "/etc/kubelet/manifests"}, false},
		{"drop-ins win in order", Process{Args: []string{"kubelet", "--config", "/etc/kubelet/config.yaml", "--config-dir=/etc/kubelet/conf.d"}},
			KubeletInfo{ConfigPath: "/etc/kubelet/config.yaml", ConfigDir: "/etc/kubelet/conf.d", StaticPodPath: "/srv/pods-b"}, false},
		{"flag wins", Process{Args: []string{"kubelet", "--config", "/etc/kubelet/config.yaml", "--pod-manifest-path", "/opt/pods"}},
			KubeletInfo{ConfigPath: "/etc/kubelet/config.yaml", StaticPodPath: "/opt/pods"}, false},
		{"JSON config", Process{Args: []string{"/usr/bin/kubelet", "--config=/var/lib/kubelet/config.json"}},
			KubeletInfo{ConfigPath: "/var/lib/kubelet/config.json", StaticPodPath: "/etc/kubernetes/manifests"}, false},
		{"no config", Process{Args: []string{"kubelet", "--kubeconfig=/etc/kubernetes/kubelet.conf"}}, KubeletInfo{}, false},
		{"missing config", Process{Args: []string{"kubelet", "--config=/nowhere.yaml"}}, KubeletInfo{}, true},
		{"relative without cwd", Process{Args: []string{"kubelet", "--config=config.yaml"}}, KubeletInfo{}, true},
	} {
		info, err := DiscoverKubelet(t.Context(), host.root, tc.p)
		if (err != nil) != tc.err || info != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.name, info, err, tc.want)
		}
	}
}

func TestSystemdUnitFromCgroup(t *testing.T) {
	for in, want := range map[string]string{
		"0::/system.slice/containerd.service\n":                                                        "containerd.service",
		"12:cpu,cpuacct:/system.slice/kubelet.service\n1:name=systemd:/system.slice/kubelet.service\n": "kubelet.service",
		"0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-abc.scope\n":                       "",
		"0::/system.slice/containerd.service/kubepods/besteffort/pod1/abc\n":                           "containerd.service",
		"1:name=systemd:/user.slice/user-0.slice/session-3.scope\n0::/\n":                              "",
		"":                     "",
		"garbage\n0::.service": "",
	} {
		if got := SystemdUnitFromCgroup([]byte(in)); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	root := t.TempDir()
	if SystemdRunning(root) {
		t.Error("systemd found in an empty root")
	}
	if err := os.MkdirAll(journal.HostPath(root, "/run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	if !SystemdRunning(root) {
		t.Error("systemd not found")
	}
}
