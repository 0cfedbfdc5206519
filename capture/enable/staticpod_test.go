package enable

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const fixtures = "../../testdata/nodeconfigs"

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const tracingPath = "/etc/kubernetes/trace-capture-apiserver-tracing.yaml"

func TestKubeadmManifestsSurviveDecodeEncode(t *testing.T) {
	// The edit re-encodes the manifest the way kubeadm writes it; on kubeadm's own output that
	// must change nothing, so the only differences after an edit are the tracing lines.
	for _, name := range []string{"kubeadm-1.37/kube-apiserver.yaml", "kubeadm-1.37/etcd-3.6.yaml", "kubeadm-1.37/etcd-3.7.yaml", "kubeadm-1.31/kube-apiserver.yaml", "kubeadm-1.31/etcd.yaml"} {
		in := fixture(t, name)
		obj, err := decodeGeneric(in)
		if err != nil {
			t.Fatal(err)
		}
		j, err := jsonMarshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		out, err := yaml.JSONToYAML(j)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(in, out) {
			t.Errorf("%s changes when decoded and encoded:\n%s", name, lineDiff(name, in, out))
		}
	}
}

func TestEditStaticPodKubeadm(t *testing.T) {
	for _, tc := range []struct {
		file      string
		component Component
		version   string // "" = from the image
		want      string // version used
		flags     []string
	}{
		{"kubeadm-1.31/etcd.yaml", Etcd, "", "3.5.15", []string{
			"--experimental-enable-distributed-tracing=true", "--experimental-distributed-tracing-address=127.0.0.1:34317",
			"--experimental-distributed-tracing-service-name=etcd", "--experimental-distributed-tracing-instance-id=cp-1",
			"--experimental-distributed-tracing-sampling-rate=1000000"}},
		{"kubeadm-1.37/etcd-3.6.yaml", Etcd, "", "3.6.16", []string{
			"--enable-distributed-tracing=true", "--distributed-tracing-address=127.0.0.1:34317",
			"--distributed-tracing-service-name=etcd", "--distributed-tracing-instance-id=cp-1",
			"--distributed-tracing-sampling-rate=1000000"}},
		{"kubeadm-1.37/etcd-3.7.yaml", Etcd, "", "3.7.0", []string{
			"--enable-distributed-tracing=true", "--distributed-tracing-address=127.0.0.1:34317",
			"--distributed-tracing-service-name=etcd", "--distributed-tracing-instance-id=cp-1",
			"--distributed-tracing-sampling-rate=1000000"}},
		{"kubeadm-1.31/kube-apiserver.yaml", APIServer, "", "1.31.0", []string{"--tracing-config-file=" + tracingPath}},
		{"kubeadm-1.37/kube-apiserver.yaml", APIServer, "", "1.37.2", []string{"--tracing-config-file=" + tracingPath}},
		{"kubeadm-1.37/kube-apiserver.yaml", APIServer, "1.26.3", "1.26.3", []string{"--tracing-config-file=" + tracingPath, "--feature-gates=APIServerTracing=true"}},
		{"local-cluster/etcd.yaml", Etcd, "3.6.16", "3.6.16", []string{
			"--enable-distributed-tracing=true", "--distributed-tracing-address=127.0.0.1:34317",
			"--distributed-tracing-service-name=etcd", "--distributed-tracing-instance-id=cp-1",
			"--distributed-tracing-sampling-rate=1000000"}},
		{"local-cluster/kube-apiserver.yaml", APIServer, "", "1.37.2", []string{"--tracing-config-file=" + tracingPath}},
	} {
		t.Run(tc.file+"/"+tc.want, func(t *testing.T) {
			in := fixture(t, tc.file)
			e := StaticPodEdit{Component: tc.component, Target: target, TracingConfigPath: tracingPath}
			if tc.version != "" {
				e.Version = MustParseVersion(tc.version)
			}
			res, err := EditStaticPod(in, e)
			if err != nil {
				t.Fatal(err)
			}
			if res.Version.String() != tc.want {
				t.Errorf("version %s, want %s", res.Version, tc.want)
			}
			if !slices.Equal(res.Flags, tc.flags) {
				t.Errorf("flags %q, want %q", res.Flags, tc.flags)
			}
			var before, after corev1.Pod
			if err := yaml.UnmarshalStrict(in, &before); err != nil {
				t.Fatal(err)
			}
			if err := yaml.UnmarshalStrict(res.Manifest, &after); err != nil {
				t.Fatalf("edited manifest does not decode strictly: %v", err)
			}
			cb, ca := before.Spec.Containers[0], after.Spec.Containers[0]
			for _, f := range tc.flags {
				if countArg(ca.Command, f) != 1 {
					t.Errorf("%s not once in %q", f, ca.Command)
				}
			}
			if ca.Command[0] != cb.Command[0] || len(ca.Command) != len(cb.Command)+len(tc.flags) {
				t.Errorf("command %q from %q", ca.Command, cb.Command)
			}
			if tc.component == APIServer {
				v := after.Spec.Volumes[len(after.Spec.Volumes)-1]
				m := ca.VolumeMounts[len(ca.VolumeMounts)-1]
				if v.Name != TracingVolumeName || v.HostPath == nil || v.HostPath.Path != tracingPath || *v.HostPath.Type != corev1.HostPathFile {
					t.Errorf("volume %+v", v)
				}
				if m.Name != TracingVolumeName || m.MountPath != tracingPath || !m.ReadOnly {
					t.Errorf("mount %+v", m)
				}
				if len(after.Spec.Volumes) != len(before.Spec.Volumes)+1 || len(ca.VolumeMounts) != len(cb.VolumeMounts)+1 {
					t.Error("other volumes changed")
				}
			} else if len(after.Spec.Volumes) != len(before.Spec.Volumes) {
				t.Error("etcd got a volume")
			}
			// Apart from the tracing parts the pod is unchanged.
			after.Spec.Containers[0].Command = cb.Command
			after.Spec.Containers[0].VolumeMounts = cb.VolumeMounts
			after.Spec.Volumes = before.Spec.Volumes
			a, _ := jsonMarshal(after)
			b, _ := jsonMarshal(before)
			if !bytes.Equal(a, b) {
				t.Errorf("pod changed beyond tracing:\n%s", lineDiff("pod", b, a))
			}
			if strings.HasPrefix(tc.file, "kubeadm") {
				// kubeadm's layout is kept: the diff only adds lines.
				for _, l := range strings.Split(lineDiff(tc.file, in, res.Manifest), "\n") {
					if strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "---") {
						t.Errorf("kubeadm manifest line removed: %s", l)
					}
				}
			}
			// Editing the edited manifest finds tracing on and changes nothing.
			again, err := EditStaticPod(res.Manifest, e)
			if err != nil || !again.AlreadyEnabled || !bytes.Equal(again.Manifest, res.Manifest) {
				t.Errorf("second edit: %v, %+v", err, again.ArgsResult)
			}
		})
	}
}

func TestEditStaticPodRefusals(t *testing.T) {
	apiserver := fixture(t, "kubeadm-1.37/kube-apiserver.yaml")
	etcd := fixture(t, "kubeadm-1.37/etcd-3.6.yaml")
	local := fixture(t, "local-cluster/etcd.yaml")
	for name, tc := range map[string]struct {
		manifest []byte
		edit     StaticPodEdit
	}{
		"k8s-tagged etcd image": {local, StaticPodEdit{Component: Etcd, Target: target}},
		"relative config path":  {apiserver, StaticPodEdit{Component: APIServer, Target: target, TracingConfigPath: "tracing.yaml"}},
		"no config path":        {apiserver, StaticPodEdit{Component: APIServer, Target: target}},
		"two documents":         {append(append(slices.Clone(etcd), "---\n"...), etcd...), StaticPodEdit{Component: Etcd, Target: target}},
		"not a pod":             {[]byte("apiVersion: v1\nkind: ConfigMap\n"), StaticPodEdit{Component: Etcd, Target: target}},
		"shell wrapper": {[]byte("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: etcd\n    image: registry.k8s.io/etcd:3.6.4-0\n    command: [/bin/sh, -c, etcd --name=x]\n"),
			StaticPodEdit{Component: Etcd, Target: target}},
		"kubelet":     {etcd, StaticPodEdit{Component: Kubelet, Target: target}},
		"empty":       {nil, StaticPodEdit{Component: Etcd, Target: target}},
		"bad target":  {etcd, StaticPodEdit{Component: Etcd, Target: Target{Endpoint: "nope"}}},
		"wrong image": {etcd, StaticPodEdit{Component: APIServer, Target: target, TracingConfigPath: tracingPath}},
	} {
		if _, err := EditStaticPod(tc.manifest, tc.edit); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A manifest whose volume name is taken is refused rather than guessed at.
	res, err := EditStaticPod(apiserver, StaticPodEdit{Component: APIServer, Target: target, TracingConfigPath: tracingPath})
	if err != nil {
		t.Fatal(err)
	}
	taken := bytes.Replace(res.Manifest, []byte("- --tracing-config-file="+tracingPath+"\n"), nil, 1)
	if _, err := EditStaticPod(taken, StaticPodEdit{Component: APIServer, Target: target, TracingConfigPath: tracingPath}); err == nil {
		t.Error("volume name clash accepted")
	}
}

func TestEditStaticPodArgsAndEnv(t *testing.T) {
	// Flags in args (command = entrypoint); etcd's tracing switched on through its environment.
	m := []byte(`apiVersion: v1
kind: Pod
metadata:
  name: etcd
spec:
  containers:
  - name: etcd
    image: registry.k8s.io/etcd:3.6.4-0
    command: [etcd]
    args: ["--name=a"]
    env:
    - name: ETCD_ENABLE_DISTRIBUTED_TRACING
      value: "true"
`)
	res, err := EditStaticPod(m, StaticPodEdit{Component: Etcd, Target: target})
	if err != nil || !res.AlreadyEnabled || !bytes.Equal(res.Manifest, m) {
		t.Fatalf("env: %+v %v", res.ArgsResult, err)
	}
	m = bytes.Replace(m, []byte(`"true"`), []byte(`"false"`), 1)
	res, err = EditStaticPod(m, StaticPodEdit{Component: Etcd, Target: target})
	if err != nil || res.AlreadyEnabled {
		t.Fatalf("args: %+v %v", res.ArgsResult, err)
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(res.Manifest, &pod); err != nil {
		t.Fatal(err)
	}
	if c := pod.Spec.Containers[0]; !slices.Equal(c.Command, []string{"etcd"}) || c.Args[0] != "--name=a" || len(c.Args) != 6 {
		t.Errorf("container %q %q", c.Command, c.Args)
	}
}

func TestUnknownPodFieldsAreKept(t *testing.T) {
	m := []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\nspec:\n  futureField: {a: 1}\n  containers:\n  - name: etcd\n    image: registry.k8s.io/etcd:3.6.4-0\n    command: [etcd]\n    futureContainerField: x\n")
	res, err := EditStaticPod(m, StaticPodEdit{Component: Etcd, Target: target})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(res.Manifest, []byte("futureField:")) || !bytes.Contains(res.Manifest, []byte("futureContainerField: x")) {
		t.Errorf("unknown fields dropped:\n%s", res.Manifest)
	}
}

func FuzzEditStaticPod(f *testing.F) {
	for _, name := range []string{"kubeadm-1.37/kube-apiserver.yaml", "kubeadm-1.37/etcd-3.6.yaml", "kubeadm-1.31/etcd.yaml", "local-cluster/etcd.yaml", "local-cluster/kube-apiserver.yaml"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"etcd","image":"e:3.5.21-0","command":["etcd","--x"]}]}}`))
	f.Fuzz(func(t *testing.T, manifest []byte) {
		for _, e := range []StaticPodEdit{
			{Component: Etcd, Target: target},
			{Component: Etcd, Version: MustParseVersion("3.6.16"), Target: target},
			{Component: APIServer, Target: target, TracingConfigPath: tracingPath},
		} {
			res, err := EditStaticPod(manifest, e)
			if err != nil {
				continue
			}
			if res.AlreadyEnabled {
				if !bytes.Equal(res.Manifest, manifest) {
					t.Fatal("already enabled but changed")
				}
				continue
			}
			var pod corev1.Pod
			if err := yaml.Unmarshal(res.Manifest, &pod); err != nil {
				t.Fatalf("edited manifest does not decode: %v", err)
			}
			again, err := EditStaticPod(res.Manifest, e)
			if err != nil && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("second edit: %v", err)
			}
			if err == nil && !again.AlreadyEnabled {
				t.Fatal("second edit does not see tracing on")
			}
		}
	})
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
