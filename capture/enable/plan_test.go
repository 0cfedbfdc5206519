package enable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trace-capture/trace-capture/capture/journal"
)

// node is a temporary host root with files at node paths.
type node struct {
	t    *testing.T
	root string
}

func newNode(t *testing.T, files map[string]string) node {
	t.Helper()
	n := node{t: t, root: t.TempDir()}
	// Every node has /var/lib (the journal goes below it).
	if err := os.MkdirAll(journal.HostPath(n.root, "/var/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, src := range files {
		data := []byte(src)
		if fi, err := os.Stat(filepath.Join(fixtures, src)); err == nil && !fi.IsDir() && src != "" {
			data = fixture(t, src) // a fixture name
		}
		mode := fs.FileMode(0o644)
		if strings.Contains(p, "/manifests/") {
			mode = 0o600 // as kubeadm writes them
		}
		n.write(p, data, mode)
	}
	return n
}

func (n node) write(p string, data []byte, mode fs.FileMode) {
	n.t.Helper()
	hp := journal.HostPath(n.root, p)
	if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(hp, data, mode); err != nil {
		n.t.Fatal(err)
	}
}

func (n node) read(p string) []byte {
	n.t.Helper()
	b, err := os.ReadFile(journal.HostPath(n.root, p))
	if err != nil {
		n.t.Fatal(err)
	}
	return b
}

func (n node) exists(p string) bool {
	_, err := os.Lstat(journal.HostPath(n.root, p))
	return err == nil
}

// snapshot maps every path below the root to its type, mode and content hash (or link target).
func (n node) snapshot() map[string]string {
	n.t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(n.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		switch {
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + journal.SHA256(b)
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			v += " -> " + target
		}
		m[strings.TrimPrefix(p, n.root)] = v
		return nil
	})
	if err != nil {
		n.t.Fatal(err)
	}
	return m
}

func (n node) same(before map[string]string) {
	n.t.Helper()
	after := n.snapshot()
	for p, v := range before {
		if after[p] != v {
			n.t.Errorf("%s: before %q, after %q", p, v, after[p])
		}
	}
	for p, v := range after {
		if _, ok := before[p]; !ok {
			n.t.Errorf("%s left behind (%s)", p, v)
		}
	}
}

var clock = func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }

func TestApplyRestoreRoundTrip(t *testing.T) {
	kubeadm137 := map[string]string{
		"/etc/kubernetes/manifests/kube-apiserver.yaml": "kubeadm-1.37/kube-apiserver.yaml",
		"/etc/kubernetes/manifests/etcd.yaml":           "kubeadm-1.37/etcd-3.6.yaml",
		"/var/lib/kubelet/config.yaml":                  "kubeadm-1.37/kubelet-config.yaml",
		"/var/lib/kubelet/kubeadm-flags.env":            "kubeadm-1.37/kubeadm-flags.env",
		"/etc/containerd/config.toml":                   "containerd/config-2.x.toml",
		"/etc/systemd/system/multi-user.target.wants/x": "unrelated\n",
	}
	kubeadm131 := map[string]string{
		"/etc/kubernetes/manifests/kube-apiserver.yaml": "kubeadm-1.31/kube-apiserver.yaml",
		"/etc/kubernetes/manifests/etcd.yaml":           "kubeadm-1.31/etcd.yaml",
		"/var/lib/kubelet/config.yaml":                  "kubeadm-1.31/kubelet-config.yaml",
		"/etc/containerd/config.toml":                   "containerd/config-1.7.toml",
		"/etc/crio/crio.conf":                           "crio/crio.conf",
		"/etc/crio/crio.conf.d/10-crio.conf":            "crio/crio.conf.d/10-crio.conf",
	}
	local := map[string]string{
		"/scratch/etc/kubernetes/manifests/kube-apiserver.yaml": "local-cluster/kube-apiserver.yaml",
		"/scratch/etc/kubernetes/manifests/etcd.yaml":           "local-cluster/etcd.yaml",
		"/scratch/kubelet/config.yaml":                          "local-cluster/kubelet-config.yaml",
		"/scratch/containerd/config.toml":                       "local-cluster/containerd-config.toml",
		"/scratch/run/containerd.env":                           "",
	}
	tracingFile := "/etc/kubernetes/" + TracingConfigFileName
	for _, tc := range []struct {
		name     string
		files    map[string]string
		spec     Spec
		method   Method
		restart  RestartKind
		written  []string // node paths changed, in order
		contains string   // a string the last written file must contain
	}{
		{"kubeadm 1.37 kube-apiserver", kubeadm137, Spec{Component: APIServer}, MethodStaticPod, RestartStaticPod,
			[]string{tracingFile, "/etc/kubernetes/manifests/kube-apiserver.yaml"}, "--tracing-config-file=" + tracingFile},
		{"kubeadm 1.37 etcd 3.6", kubeadm137, Spec{Component: Etcd}, MethodStaticPod, RestartStaticPod,
			[]string{"/etc/kubernetes/manifests/etcd.yaml"}, "--enable-distributed-tracing=true"},
		{"kubeadm 1.37 kubelet", kubeadm137, Spec{Component: Kubelet, Version: MustParseVersion("v1.37.2")}, MethodKubeletConfig, RestartService,
			[]string{"/var/lib/kubelet/config.yaml"}, "samplingRatePerMillion: 1000000"},
		{"containerd 2.4 systemd drop-in", kubeadm137, Spec{Component: Containerd, Version: MustParseVersion("containerd://2.4.2"), ProcessEnv: []string{"PATH=/usr/bin"}}, MethodSystemdDropIn, RestartService,
			[]string{"/etc/systemd/system/containerd.service.d/99-trace-capture.conf"}, `Environment="OTEL_EXPORTER_OTLP_PROTOCOL=grpc"`},
		{"kubeadm 1.31 kube-apiserver", kubeadm131, Spec{Component: APIServer}, MethodStaticPod, RestartStaticPod,
			[]string{tracingFile, "/etc/kubernetes/manifests/kube-apiserver.yaml"}, "--tracing-config-file="},
		{"kubeadm 1.31 etcd 3.5", kubeadm131, Spec{Component: Etcd}, MethodStaticPod, RestartStaticPod,
			[]string{"/etc/kubernetes/manifests/etcd.yaml"}, "--experimental-enable-distributed-tracing=true"},
		{"kubeadm 1.31 kubelet", kubeadm131, Spec{Component: Kubelet, Version: MustParseVersion("v1.31.0")}, MethodKubeletConfig, RestartService,
			[]string{"/var/lib/kubelet/config.yaml"}, "tracing:"},
		{"kubelet 1.26 gate", map[string]string{"/var/lib/kubelet/config.yaml": "kubelet-1.26-featuregates-config.yaml"}, Spec{Component: Kubelet, Version: MustParseVersion("v1.26.15")}, MethodKubeletConfig, RestartService,
			[]string{"/var/lib/kubelet/config.yaml"}, "KubeletTracing: true"},
		{"containerd 1.7 config.toml", kubeadm131, Spec{Component: Containerd, Version: MustParseVersion("containerd://1.7.24")}, MethodContainerdConfig, RestartService,
			[]string{"/etc/containerd/config.toml"}, `protocol = "http/protobuf"`},
		{"containerd 1.7 without config.toml", map[string]string{"/etc/containerd/.keep": "x\n"}, Spec{Component: Containerd, Version: MustParseVersion("1.7.24")}, MethodContainerdConfig, RestartService,
			[]string{"/etc/containerd/config.toml"}, "version = 2"},
		{"CRI-O 1.36", kubeadm131, Spec{Component: CRIO, Version: MustParseVersion("cri-o://1.36.3")}, MethodCRIODropIn, RestartService,
			[]string{"/etc/crio/crio.conf.d/99-trace-capture.conf"}, "enable_tracing = true"},
		{"CRI-O without a drop-in folder", map[string]string{"/etc/crio/crio.conf": "crio/crio.conf"}, Spec{Component: CRIO, Version: MustParseVersion("1.30.0")}, MethodCRIODropIn, RestartService,
			[]string{"/etc/crio/crio.conf.d/99-trace-capture.conf"}, "tracing_sampling_rate_per_million = 1000000"},
		{"local cluster kube-apiserver", local, Spec{Component: APIServer, ManifestPath: "/scratch/etc/kubernetes/manifests/kube-apiserver.yaml"}, MethodStaticPod, RestartStaticPod,
			[]string{"/scratch/etc/kubernetes/" + TracingConfigFileName, "/scratch/etc/kubernetes/manifests/kube-apiserver.yaml"}, "path: /scratch/etc/kubernetes/" + TracingConfigFileName},
		{"local cluster etcd", local, Spec{Component: Etcd, Version: MustParseVersion("etcd Version: 3.6.16"), ManifestPath: "/scratch/etc/kubernetes/manifests/etcd.yaml"}, MethodStaticPod, RestartStaticPod,
			[]string{"/scratch/etc/kubernetes/manifests/etcd.yaml"}, "--distributed-tracing-address=127.0.0.1:34317"},
		{"local cluster kubelet", local, Spec{Component: Kubelet, Version: MustParseVersion("v1.37.2"), KubeletConfigPath: "/scratch/kubelet/config.yaml"}, MethodKubeletConfig, RestartService,
			[]string{"/scratch/kubelet/config.yaml"}, "tracing:"},
		{"local cluster containerd env file", local, Spec{Component: Containerd, Version: MustParseVersion("2.4.2"), EnvFile: "/scratch/run/containerd.env", ProcessEnv: []string{}}, MethodEnvFile, RestartService,
			[]string{"/scratch/run/containerd.env"}, "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:34317\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, tc.files)
			before := n.snapshot()
			spec := tc.spec
			spec.Node, spec.Target = "cp-1", target
			plan, err := BuildPlan(t.Context(), n.root, spec)
			if err != nil {
				t.Fatal(err)
			}
			if plan.AlreadyEnabled || plan.Method != tc.method || plan.Restart.Kind != tc.restart || plan.Node != "cp-1" || plan.Version.IsZero() {
				t.Fatalf("plan %+v", plan)
			}
			var paths []string
			for _, c := range plan.Changes {
				paths = append(paths, c.Path)
			}
			if strings.Join(paths, ",") != strings.Join(tc.written, ",") {
				t.Fatalf("changes %v, want %v", paths, tc.written)
			}
			n.same(before) // planning changes nothing

			applied, err := Apply(t.Context(), n.root, plan, ApplyOptions{RunID: "run-1", Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			if applied.RecordID == "" || strings.Join(applied.Files, ",") != strings.Join(tc.written, ",") {
				t.Errorf("applied %+v", applied)
			}
			for _, c := range plan.Changes {
				if got := n.read(c.Path); !bytes.Equal(got, c.NewBytes) {
					t.Errorf("%s not written", c.Path)
				}
				// Nothing but our file appears next to it (no temporary or backup files).
				entries, _ := os.ReadDir(journal.HostPath(n.root, filepath.Dir(c.Path)))
				for _, e := range entries {
					if strings.HasPrefix(e.Name(), ".trace-capture") || strings.Contains(e.Name(), "backup") {
						t.Errorf("%s left in %s", e.Name(), filepath.Dir(c.Path))
					}
				}
			}
			last := tc.written[len(tc.written)-1]
			if !bytes.Contains(n.read(last), []byte(tc.contains)) {
				t.Errorf("%s lacks %q:\n%s", last, tc.contains, n.read(last))
			}
			if fi, err := os.Stat(journal.HostPath(n.root, last)); err == nil && tc.files[last] != "" && strings.Contains(last, "/manifests/") && fi.Mode().Perm() != 0o600 {
				t.Errorf("manifest mode changed to %v", fi.Mode().Perm())
			}
			pending, err := Pending(t.Context(), n.root, "")
			if err != nil || len(pending) != 1 || pending[0].Component != tc.spec.Component || pending[0].Restart != plan.Restart || pending[0].Method != tc.method {
				t.Fatalf("pending %+v %v", pending, err)
			}

			restored, err := Restore(t.Context(), n.root, RestoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(restored) != 1 || !restored[0].Changed || !restored[0].Complete || restored[0].Restart != plan.Restart || restored[0].Component != tc.spec.Component {
				t.Errorf("restored %+v", restored)
			}
			n.same(before)

			// Restoring again finds nothing to do.
			restored, err = Restore(t.Context(), n.root, RestoreOptions{})
			if err != nil || len(restored) != 0 {
				t.Errorf("second restore: %+v %v", restored, err)
			}
		})
	}
}

func TestApplyFailsHalfwayAndUndoes(t *testing.T) {
	n := newNode(t, map[string]string{"/etc/kubernetes/manifests/kube-apiserver.yaml": "kubeadm-1.37/kube-apiserver.yaml"})
	before := n.snapshot()
	plan, err := BuildPlan(t.Context(), n.root, Spec{Component: APIServer, Target: target})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	opts := ApplyOptions{Now: clock, beforeWrite: func(p string) error {
		if strings.HasSuffix(p, "kube-apiserver.yaml") {
			// The tracing configuration was written already.
			if !n.exists("/etc/kubernetes/" + TracingConfigFileName) {
				t.Error("first file not written before the second")
			}
			return boom
		}
		return nil
	}}
	applied, err := Apply(t.Context(), n.root, plan, opts)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if applied.RecordID != "" {
		t.Errorf("applied %+v after a verified undo", applied)
	}
	// The journal is empty; the capture's final restore finds nothing to do and removes it.
	if p, _ := Pending(t.Context(), n.root, ""); len(p) != 0 {
		t.Errorf("pending %+v", p)
	}
	if r, err := Restore(t.Context(), n.root, RestoreOptions{}); err != nil || len(r) != 0 {
		t.Errorf("restore: %+v %v", r, err)
	}
	n.same(before)
}

func TestApplyUndoFailureKeepsJournal(t *testing.T) {
	n := newNode(t, map[string]string{"/etc/kubernetes/manifests/kube-apiserver.yaml": "kubeadm-1.37/kube-apiserver.yaml"})
	before := n.snapshot()
	plan, err := BuildPlan(t.Context(), n.root, Spec{Component: APIServer, Target: target})
	if err != nil {
		t.Fatal(err)
	}
	tracingFile := "/etc/kubernetes/" + TracingConfigFileName
	applied, err := Apply(t.Context(), n.root, plan, ApplyOptions{Now: clock, beforeWrite: func(p string) error {
		if strings.HasSuffix(p, "kube-apiserver.yaml") {
			// Someone rewrites the file we just created: the undo must not delete their file.
			n.write(tracingFile, []byte("someone else's\n"), 0o644)
			return errors.New("write failed")
		}
		return nil
	}})
	if err == nil || !errors.Is(err, journal.ErrConflict) || applied.RecordID == "" {
		t.Fatalf("err = %v, applied %+v", err, applied)
	}
	if !strings.Contains(err.Error(), "journal record "+applied.RecordID+" kept") {
		t.Errorf("error does not name the kept record: %v", err)
	}
	pending, _ := Pending(t.Context(), n.root, "")
	if len(pending) != 1 || len(pending[0].Files) != 1 || pending[0].Files[0].Path != tracingFile {
		t.Fatalf("pending %+v", pending)
	}
	// The operator decides: a forced restore removes the file and empties the journal.
	if _, err := Restore(t.Context(), n.root, RestoreOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	n.same(before)
}

func TestRestoreContinuesPastFailures(t *testing.T) {
	n := newNode(t, map[string]string{
		"/etc/kubernetes/manifests/kube-apiserver.yaml": "kubeadm-1.37/kube-apiserver.yaml",
		"/etc/kubernetes/manifests/etcd.yaml":           "kubeadm-1.37/etcd-3.7.yaml",
		"/var/lib/kubelet/config.yaml":                  "kubeadm-1.37/kubelet-config.yaml",
	})
	before := n.snapshot()
	for _, s := range []Spec{
		{Component: Etcd},
		{Component: APIServer},
		{Component: Kubelet, Version: MustParseVersion("1.37.2")},
	} {
		s.Target = target
		plan, err := BuildPlan(t.Context(), n.root, s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Apply(t.Context(), n.root, plan, ApplyOptions{RunID: "run-7", Now: clock}); err != nil {
			t.Fatal(err)
		}
	}
	// During the window an administrator edits the etcd manifest.
	edited := append(n.read("/etc/kubernetes/manifests/etcd.yaml"), "# edited\n"...)
	n.write("/etc/kubernetes/manifests/etcd.yaml", edited, 0o600)

	restored, err := Restore(t.Context(), n.root, RestoreOptions{RunID: "run-7"})
	if err == nil || !errors.Is(err, journal.ErrConflict) || !strings.Contains(err.Error(), "etcd.yaml") {
		t.Fatalf("err = %v", err)
	}
	if len(restored) != 3 {
		t.Fatalf("restored %+v", restored)
	}
	// Newest first: kubelet, kube-apiserver restored; etcd kept.
	for i, want := range []struct {
		c        Component
		complete bool
	}{{Kubelet, true}, {APIServer, true}, {Etcd, false}} {
		if restored[i].Component != want.c || restored[i].Complete != want.complete || restored[i].Changed != want.complete {
			t.Errorf("restored[%d] = %+v", i, restored[i])
		}
	}
	if !bytes.Equal(n.read("/var/lib/kubelet/config.yaml"), fixture(t, "kubeadm-1.37/kubelet-config.yaml")) {
		t.Error("kubelet config not restored")
	}
	if !bytes.Equal(n.read("/etc/kubernetes/manifests/etcd.yaml"), edited) {
		t.Error("the administrator's edit was overwritten")
	}
	pending, _ := Pending(t.Context(), n.root, "")
	if len(pending) != 1 || pending[0].Component != Etcd || pending[0].Restart.Kind != RestartStaticPod {
		t.Fatalf("pending %+v", pending)
	}
	restored, err = Restore(t.Context(), n.root, RestoreOptions{Force: true})
	if err != nil || len(restored) != 1 || !restored[0].Complete {
		t.Fatalf("forced: %+v %v", restored, err)
	}
	n.same(before)
}

func TestApplyRefusesStalePlan(t *testing.T) {
	n := newNode(t, map[string]string{"/var/lib/kubelet/config.yaml": "kubeadm-1.37/kubelet-config.yaml"})
	plan, err := BuildPlan(t.Context(), n.root, Spec{Component: Kubelet, Version: MustParseVersion("1.37.2"), Target: target})
	if err != nil {
		t.Fatal(err)
	}
	changed := append(n.read("/var/lib/kubelet/config.yaml"), "maxPods: 200\n"...)
	n.write("/var/lib/kubelet/config.yaml", changed, 0o644)
	before := n.snapshot()
	if _, err := Apply(t.Context(), n.root, plan, ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "changed after the plan") {
		t.Fatalf("err = %v", err)
	}
	n.same(before) // no journal either

	// A plan whose file appeared in the meantime is refused too.
	n2 := newNode(t, map[string]string{"/etc/crio/crio.conf": "crio/crio.conf"})
	plan, err = BuildPlan(t.Context(), n2.root, Spec{Component: CRIO, Version: MustParseVersion("1.36.0"), Target: target})
	if err != nil {
		t.Fatal(err)
	}
	n2.write("/etc/crio/crio.conf.d/99-trace-capture.conf", []byte("x"), 0o644)
	if _, err := Apply(t.Context(), n2.root, plan, ApplyOptions{}); err == nil {
		t.Fatal("applied over a file that appeared")
	}
	// Tampered plans are refused.
	plan.Changes[0].NewBytes = []byte("other")
	if _, err := Apply(t.Context(), n2.root, plan, ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("tampered: %v", err)
	}
}

func TestApplyRefusesJournalInAChangedFolder(t *testing.T) {
	n := newNode(t, map[string]string{"/etc/kubernetes/manifests/etcd.yaml": "kubeadm-1.37/etcd-3.6.yaml"})
	before := n.snapshot()
	plan, err := BuildPlan(t.Context(), n.root, Spec{Component: Etcd, Target: target})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"/etc/kubernetes/manifests", "/etc/kubernetes/manifests/journal"} {
		if _, err := Apply(t.Context(), n.root, plan, ApplyOptions{JournalDir: dir}); err == nil || !strings.Contains(err.Error(), "inside") {
			t.Errorf("journal %s: %v", dir, err)
		}
	}
	n.same(before)
}

func TestAlreadyEnabledIsLeftAlone(t *testing.T) {
	on := string(fixture(t, "kubeadm-1.37/kubelet-config.yaml")) + "tracing:\n  endpoint: otel-collector.monitoring:4317\n"
	etcdOn := strings.Replace(string(fixture(t, "kubeadm-1.31/etcd.yaml")), "    - --snapshot-count=10000\n", "    - --snapshot-count=10000\n    - --experimental-enable-distributed-tracing=true\n", 1)
	n := newNode(t, map[string]string{
		"/var/lib/kubelet/config.yaml":        on,
		"/etc/kubernetes/manifests/etcd.yaml": etcdOn,
		"/etc/crio/crio.conf":                 "[crio.tracing]\nenable_tracing = true\n",
	})
	before := n.snapshot()
	for _, s := range []Spec{
		{Component: Kubelet, Version: MustParseVersion("1.37.2")},
		{Component: Etcd},
		{Component: CRIO, Version: MustParseVersion("1.36.0")},
		{Component: Containerd, Version: MustParseVersion("2.4.2"), ProcessEnv: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318"}},
	} {
		s.Target = target
		plan, err := BuildPlan(t.Context(), n.root, s)
		if err != nil {
			t.Fatalf("%s: %v", s.Component, err)
		}
		if !plan.AlreadyEnabled || plan.Reason == "" || len(plan.Changes) != 0 || plan.Restart.Kind != RestartNone {
			t.Errorf("%s: %+v", s.Component, plan)
		}
		applied, err := Apply(t.Context(), n.root, plan, ApplyOptions{})
		if err != nil || applied.RecordID != "" {
			t.Errorf("%s: applied %+v %v", s.Component, applied, err)
		}
	}
	n.same(before) // not even a journal folder
}

func TestApplyThroughSymbolicLinks(t *testing.T) {
	// /var/lib/kubelet is a link to a data disk (an absolute target, resolved inside the host root).
	n := newNode(t, map[string]string{"/data/kubelet/config.yaml": "kubeadm-1.37/kubelet-config.yaml"})
	if err := os.MkdirAll(journal.HostPath(n.root, "/var/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/data/kubelet", journal.HostPath(n.root, "/var/lib/kubelet")); err != nil {
		t.Fatal(err)
	}
	before := n.snapshot()
	plan, err := BuildPlan(t.Context(), n.root, Spec{Component: Kubelet, Version: MustParseVersion("1.37.2"), Target: target})
	if err != nil {
		t.Fatal(err)
	}
	applied, err := Apply(t.Context(), n.root, plan, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(applied.Files) != 1 || applied.Files[0] != "/data/kubelet/config.yaml" {
		t.Errorf("files %v", applied.Files)
	}
	if fi, err := os.Lstat(journal.HostPath(n.root, "/var/lib/kubelet")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Error("the link was replaced")
	}
	if !bytes.Contains(n.read("/data/kubelet/config.yaml"), []byte("tracing:")) {
		t.Error("not written through the link")
	}
	if _, err := Restore(t.Context(), n.root, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	n.same(before)
}

func TestPlanRefusals(t *testing.T) {
	n := newNode(t, map[string]string{
		"/etc/kubernetes/manifests/kube-apiserver.yaml": "kubeadm-1.37/kube-apiserver.yaml",
		"/etc/crio/crio.conf":                           "crio/crio.conf",
		"/etc/crio/crio.conf.d/zz-local.conf":           "[crio.tracing]\ntracing_sampling_rate_per_million = 5\n",
	})
	for name, s := range map[string]Spec{
		"config in manifest folder": {Component: APIServer, TracingConfigPath: "/etc/kubernetes/manifests/tracing.yaml"},
		"missing manifest":          {Component: Etcd},
		"kubelet without version":   {Component: Kubelet},
		"missing kubelet config":    {Component: Kubelet, Version: MustParseVersion("1.37.0")},
		"later CRI-O drop-in":       {Component: CRIO, Version: MustParseVersion("1.36.0")},
		"old CRI-O":                 {Component: CRIO, Version: MustParseVersion("1.22.0")},
		"unknown component":         {Component: "kube-proxy"},
		"bad target":                {Component: APIServer, Target: Target{Endpoint: "x"}},
	} {
		if s.Target.Endpoint == "" {
			s.Target = target
		}
		if _, err := BuildPlan(t.Context(), n.root, s); err == nil {
			t.Errorf("%s: planned", name)
		}
	}
}

func TestPlanJSONAndDiff(t *testing.T) {
	n := newNode(t, map[string]string{"/etc/kubernetes/manifests/kube-apiserver.yaml": "kubeadm-1.37/kube-apiserver.yaml"})
	plan, err := BuildPlan(t.Context(), n.root, Spec{Component: APIServer, Node: "cp-1", Target: target})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["component"] != "kube-apiserver" || m["version"] != "1.37.2" || m["method"] != "static-pod-manifest" || m["node"] != "cp-1" {
		t.Errorf("plan JSON %s", b)
	}
	changes := m["changes"].([]any)
	first := changes[0].(map[string]any)
	if first["created"] != true || first["newSHA256"] == "" || first["originalBytes"] != nil || first["mode"] != "0600" {
		t.Errorf("change JSON %v", first)
	}
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Changes[0].Mode != 0o600 || back.Changes[1].OriginalSHA256 != plan.Changes[1].OriginalSHA256 || back.Version.String() != plan.Version.String() || back.Restart != plan.Restart {
		t.Errorf("plan JSON round trip: %+v", back)
	}
	if r := m["restart"].(map[string]any); r["kind"] != "static-pod" || r["expectedUnavailabilitySeconds"].(float64) <= 0 {
		t.Errorf("restart JSON %v", r)
	}
	d := plan.Changes[1].Diff()
	if !strings.HasPrefix(d, "--- a/etc/kubernetes/manifests/kube-apiserver.yaml\n+++ b/etc/kubernetes/manifests/kube-apiserver.yaml\n@@ ") ||
		!strings.Contains(d, "\n+    - --tracing-config-file=/etc/kubernetes/trace-capture-apiserver-tracing.yaml\n") {
		t.Errorf("diff:\n%s", d)
	}
	if d := plan.Changes[0].Diff(); !strings.HasPrefix(d, "--- /dev/null\n") || !strings.Contains(d, "+kind: TracingConfiguration\n") {
		t.Errorf("new file diff:\n%s", d)
	}
}

func TestApplyWithCancelledContextChangesNothing(t *testing.T) {
	n := newNode(t, map[string]string{"/var/lib/kubelet/config.yaml": "kubeadm-1.37/kubelet-config.yaml"})
	before := n.snapshot()
	plan, err := BuildPlan(t.Context(), n.root, Spec{Component: Kubelet, Version: MustParseVersion("1.37.2"), Target: target})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Apply(ctx, n.root, plan, ApplyOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	// Cancelled between the journal and the first write: the record is undone and dropped.
	ctx, cancel = context.WithCancel(t.Context())
	_, err = Apply(ctx, n.root, plan, ApplyOptions{beforeWrite: func(string) error { cancel(); return ctx.Err() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if _, err := Restore(t.Context(), n.root, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	n.same(before)
}
