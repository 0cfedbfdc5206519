package enable

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// kubeletTracing decodes the parts of a KubeletConfiguration these tests check.
type kubeletTracing struct {
	Kind    string `json:"kind"`
	Tracing *struct {
		Endpoint               string `json:"endpoint"`
		SamplingRatePerMillion int32  `json:"samplingRatePerMillion"`
	} `json:"tracing"`
	FeatureGates  map[string]bool `json:"featureGates"`
	StaticPodPath string          `json:"staticPodPath"`
}

func TestEditKubeletConfig(t *testing.T) {
	for _, tc := range []struct {
		file        string
		version     string
		gate        bool
		reformatted bool
		appended    string // exact bytes appended, when the edit is a pure append
	}{
		{"kubeadm-1.37/kubelet-config.yaml", "1.37.2", false, false, "tracing:\n  endpoint: 127.0.0.1:34317\n  samplingRatePerMillion: 1000000\n"},
		{"kubeadm-1.31/kubelet-config.yaml", "1.31.0", false, false, "tracing:\n  endpoint: 127.0.0.1:34317\n  samplingRatePerMillion: 1000000\n"},
		{"kubelet-1.26-config.yaml", "1.26.15", true, false, "featureGates:\n  KubeletTracing: true\ntracing:\n  endpoint: 127.0.0.1:34317\n  samplingRatePerMillion: 1000000\n"},
		{"kubelet-1.26-featuregates-config.yaml", "1.26.15", true, false, ""},
		{"local-cluster/kubelet-config.yaml", "1.37.2", false, false, "tracing:\n  endpoint: 127.0.0.1:34317\n  samplingRatePerMillion: 1000000\n"},
		{"kubelet-config.json", "1.37.2", false, false, ""},
		{"kubelet-config.json", "1.25.0", true, false, ""},
	} {
		t.Run(tc.file+"/"+tc.version, func(t *testing.T) {
			in := fixture(t, tc.file)
			res, err := EditKubeletConfig(in, MustParseVersion(tc.version), target)
			if err != nil {
				t.Fatal(err)
			}
			if res.AlreadyEnabled || res.Reformatted != tc.reformatted {
				t.Fatalf("%+v", res)
			}
			var got kubeletTracing
			if err := yaml.Unmarshal(res.Config, &got); err != nil {
				t.Fatal(err)
			}
			if got.Tracing == nil || got.Tracing.Endpoint != target.Endpoint || got.Tracing.SamplingRatePerMillion != target.SamplingRatePerMillion {
				t.Errorf("tracing %+v", got.Tracing)
			}
			if got.FeatureGates["KubeletTracing"] != tc.gate {
				t.Errorf("gates %v", got.FeatureGates)
			}
			if tc.appended != "" && string(res.Config) != string(in)+tc.appended {
				t.Errorf("not a pure append:\n%s", lineDiff(tc.file, in, res.Config))
			}
			if tc.file == "kubelet-1.26-featuregates-config.yaml" {
				if !got.FeatureGates["RotateKubeletServerCertificate"] {
					t.Error("existing gate lost")
				}
				// One line inserted into the existing block, the section appended.
				d := lineDiff(tc.file, in, res.Config)
				if strings.Count(d, "\n+") != 5 || strings.Count(d, "\n-") != 0 { // the "+++" header included
					t.Errorf("diff:\n%s", d)
				}
			}
			if strings.HasPrefix(tc.file, "local-cluster") && !bytes.Contains(res.Config, []byte("# cgroup v1 host")) {
				t.Error("comments lost")
			}
			if strings.HasSuffix(tc.file, ".json") {
				if !json.Valid(res.Config) {
					t.Errorf("not JSON:\n%s", res.Config)
				}
				if !bytes.HasPrefix(res.Config, in[:len(in)-3]) {
					t.Errorf("JSON not edited in place:\n%s", res.Config)
				}
			}
			again, err := EditKubeletConfig(res.Config, MustParseVersion(tc.version), target)
			if err != nil || !again.AlreadyEnabled || !bytes.Equal(again.Config, res.Config) {
				t.Errorf("second edit: %+v %v", again, err)
			}
		})
	}
}

func TestEditKubeletConfigLayouts(t *testing.T) {
	v := MustParseVersion("1.26.0")
	for name, tc := range map[string]struct {
		in          string
		reformatted bool
	}{
		"tracing null":  {"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ntracing: null\nstaticPodPath: /etc/kubernetes/manifests\n", false},
		"tracing empty": {"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ntracing:\nstaticPodPath: /etc/kubernetes/manifests", false},
		"gate false":    {"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nfeatureGates:\n    A: true\n    KubeletTracing: false # off\n", false},
		"flow gates":    {"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nfeatureGates: {A: true}\n", true},
		// A YAML flow mapping takes JSON-style members before its closing brace.
		"flow document":         {"{apiVersion: kubelet.config.k8s.io/v1beta1, kind: KubeletConfiguration}\n", false},
		"document start marker": {"---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n", false},
		"indented document":     {"  apiVersion: kubelet.config.k8s.io/v1beta1\n  kind: KubeletConfiguration\n", true},
		"document end marker":   {"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n...\n", true},
		"block scalar at end":   {"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nproviderID: |\n  x\n", false},
	} {
		res, err := EditKubeletConfig([]byte(tc.in), v, target)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if res.Reformatted != tc.reformatted {
			t.Errorf("%s: reformatted = %v\n%s", name, res.Reformatted, res.Config)
		}
		var got kubeletTracing
		if err := yaml.UnmarshalStrict(res.Config, &got); err != nil && !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("%s: %v\n%s", name, err, res.Config)
		}
		if got.Tracing == nil || !got.FeatureGates["KubeletTracing"] {
			t.Errorf("%s: %+v\n%s", name, got, res.Config)
		}
	}
}

func TestEditKubeletConfigRefusals(t *testing.T) {
	in := fixture(t, "kubeadm-1.37/kubelet-config.yaml")
	if _, err := EditKubeletConfig(in, MustParseVersion("1.24.17"), target); !errors.Is(err, ErrUnsupported) {
		t.Errorf("1.24: %v", err)
	}
	for name, data := range map[string]string{
		"not a kubelet config": "apiVersion: v1\nkind: Pod\n",
		"two documents":        "kind: KubeletConfiguration\n---\nkind: KubeletConfiguration\n",
		"list":                 "- a\n- b\n",
		"empty":                "",
	} {
		if _, err := EditKubeletConfig([]byte(data), MustParseVersion("1.37.0"), target); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	on := append(in, "tracing:\n  endpoint: otel.example:4317\n"...)
	res, err := EditKubeletConfig(on, MustParseVersion("1.37.2"), target)
	if err != nil || !res.AlreadyEnabled || !bytes.Equal(res.Config, on) {
		t.Errorf("already on: %+v %v", res, err)
	}
}

func FuzzEditKubeletConfig(f *testing.F) {
	for _, name := range []string{"kubeadm-1.37/kubelet-config.yaml", "kubelet-1.26-featuregates-config.yaml", "local-cluster/kubelet-config.yaml", "kubelet-config.json"} {
		f.Add(fixture(f, name), "1.26.0")
	}
	f.Add([]byte("kind: KubeletConfiguration\ntracing: ~\n"), "1.37.0")
	f.Fuzz(func(t *testing.T, config []byte, version string) {
		v, err := ParseVersion(version)
		if err != nil {
			return
		}
		res, err := EditKubeletConfig(config, v, target)
		if err != nil {
			return
		}
		if res.AlreadyEnabled {
			if !bytes.Equal(res.Config, config) {
				t.Fatal("already enabled but changed")
			}
			return
		}
		var got kubeletTracing
		if err := yaml.Unmarshal(res.Config, &got); err != nil {
			t.Fatalf("edited config does not decode: %v\n%s", err, res.Config)
		}
		if got.Tracing == nil || got.Tracing.Endpoint != target.Endpoint {
			t.Fatalf("no tracing in\n%s", res.Config)
		}
		again, err := EditKubeletConfig(res.Config, v, target)
		if err != nil || !again.AlreadyEnabled {
			t.Fatalf("second edit: %+v %v", again, err)
		}
	})
}
