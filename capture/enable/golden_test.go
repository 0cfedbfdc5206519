package enable

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "update golden files")

// TestPlansGolden writes every plan for the fixtures, with the diff of each file it changes, to
// testdata/plans.golden: the exact changes trace-capture makes on each kind of node, for review.
func TestPlansGolden(t *testing.T) {
	tg := Target{Endpoint: "127.0.0.1:4317", HTTPEndpoint: "127.0.0.1:4318", SamplingRatePerMillion: 1000000, ServiceInstanceID: "cp-1"}
	cases := []struct {
		name  string
		files map[string]string
		spec  Spec
	}{
		{"kubeadm 1.37, kube-apiserver", map[string]string{"/etc/kubernetes/manifests/kube-apiserver.yaml": "kubeadm-1.37/kube-apiserver.yaml"}, Spec{Component: APIServer}},
		{"kubeadm 1.37, etcd 3.7", map[string]string{"/etc/kubernetes/manifests/etcd.yaml": "kubeadm-1.37/etcd-3.7.yaml"}, Spec{Component: Etcd}},
		{"kubeadm 1.37, etcd 3.6", map[string]string{"/etc/kubernetes/manifests/etcd.yaml": "kubeadm-1.37/etcd-3.6.yaml"}, Spec{Component: Etcd}},
		{"kubeadm 1.31, kube-apiserver", map[string]string{"/etc/kubernetes/manifests/kube-apiserver.yaml": "kubeadm-1.31/kube-apiserver.yaml"}, Spec{Component: APIServer}},
		{"kubeadm 1.31, etcd 3.5", map[string]string{"/etc/kubernetes/manifests/etcd.yaml": "kubeadm-1.31/etcd.yaml"}, Spec{Component: Etcd}},
		{"kubeadm 1.37, kubelet", map[string]string{"/var/lib/kubelet/config.yaml": "kubeadm-1.37/kubelet-config.yaml"}, Spec{Component: Kubelet, Version: MustParseVersion("v1.37.2")}},
		{"kubelet 1.26 with feature gates", map[string]string{"/var/lib/kubelet/config.yaml": "kubelet-1.26-featuregates-config.yaml"}, Spec{Component: Kubelet, Version: MustParseVersion("v1.26.15")}},
		{"CRI-O 1.36", map[string]string{"/etc/crio/crio.conf": "crio/crio.conf", "/etc/crio/crio.conf.d/10-crio.conf": "crio/crio.conf.d/10-crio.conf"}, Spec{Component: CRIO, Version: MustParseVersion("cri-o://1.36.3")}},
		{"containerd 2.4 under systemd", map[string]string{"/etc/containerd/config.toml": "containerd/config-2.x.toml"}, Spec{Component: Containerd, Version: MustParseVersion("containerd://2.4.2"), ProcessEnv: []string{}}},
		{"containerd 1.7", map[string]string{"/etc/containerd/config.toml": "containerd/config-1.7.toml"}, Spec{Component: Containerd, Version: MustParseVersion("containerd://1.7.24")}},
		{"local cluster, etcd", map[string]string{"/scratch/etc/kubernetes/manifests/etcd.yaml": "local-cluster/etcd.yaml"}, Spec{Component: Etcd, Version: MustParseVersion("3.6.16"), ManifestPath: "/scratch/etc/kubernetes/manifests/etcd.yaml"}},
		{"local cluster, kubelet", map[string]string{"/scratch/kubelet/config.yaml": "local-cluster/kubelet-config.yaml"}, Spec{Component: Kubelet, Version: MustParseVersion("v1.37.2"), KubeletConfigPath: "/scratch/kubelet/config.yaml"}},
		{"local cluster, containerd 2.4 without systemd", map[string]string{"/scratch/run/containerd.env": "local-cluster/containerd.env"}, Spec{Component: Containerd, Version: MustParseVersion("2.4.2"), EnvFile: "/scratch/run/containerd.env", ProcessEnv: []string{}}},
	}
	var out strings.Builder
	out.WriteString("# Plans for the fixtures in testdata/nodeconfigs (target 127.0.0.1:4317, every span sampled).\n")
	out.WriteString("# Regenerate with: go test ./capture/enable -run TestPlansGolden -update\n")
	for _, tc := range cases {
		n := newNode(t, tc.files)
		spec := tc.spec
		spec.Node, spec.Target = "cp-1", tg
		plan, err := BuildPlan(t.Context(), n.root, spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, err := json.MarshalIndent(plan, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString("\n## " + tc.name + "\n\n" + string(b) + "\n")
		for _, c := range plan.Changes {
			out.WriteString("\n" + c.Diff())
		}
	}
	golden := filepath.Join("testdata", "plans.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got := out.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) && i < len(wl); i++ {
			if gl[i] != wl[i] {
				t.Fatalf("plans differ from %s at line %d:\n got %q\nwant %q", golden, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("plans differ from %s in length: %d lines, want %d", golden, len(gl), len(wl))
	}
}
