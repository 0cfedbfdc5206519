package enable

import (
	"encoding/json"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"registry.k8s.io/etcd:3.5.21-0", "3.5.21"},
		{"registry.k8s.io/etcd:3.6.4-0@sha256:e36c081683425b5b3bc1425bc508b37e7107bb65dfa9367bf5a80125d431fa19", "3.6.4"},
		{"myregistry.local:5000/etcd:3.5.9-0", "3.5.9"},
		{"10.0.0.1:5000/etcd:3.6.16", "3.6.16"},
		{"registry.k8s.io/kube-apiserver:v1.37.2", "1.37.2"},
		{"quay.io/coreos/etcd:v3.7.0", "3.7.0"},
		{"v1.37.2", "1.37.2"},
		{"v1.31.0-rc.1", "1.31.0-rc.1"},
		{"v1.30.4+k3s1", "1.30.4"},
		{"v1.31.1-eks-a1b2c3", "1.31.1-eks-a1b2c3"},
		{"containerd 2.4.2", "2.4.2"},
		{"containerd github.com/containerd/containerd/v2 v2.4.2 9ab3bf9", "2.4.2"},
		{"containerd://1.7.24", "1.7.24"},
		{"cri-o://1.36.3", "1.36.3"},
		{"etcd Version: 3.6.16\nGit SHA: GitNotFound\nGo Version: go1.26.8\nGo OS/Arch: linux/amd64\n", "3.6.16"},
		{"Kubernetes v1.37.2", "1.37.2"},
		{"crio version 1.36.3", "1.36.3"},
		{"1.7.24-1", "1.7.24"},
		{"3.5", "3.5.0"},
	} {
		v, err := ParseVersion(tc.in)
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", tc.in, err)
			continue
		}
		if v.String() != tc.want || v.Raw != tc.in {
			t.Errorf("ParseVersion(%q) = %s (raw %q), want %s", tc.in, v, v.Raw, tc.want)
		}
	}
	for _, bad := range []string{"", "registry.k8s.io/etcd", "registry.k8s.io/etcd:latest", "go1.24.4", "version unknown"} {
		if v, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) = %s, want error", bad, v)
		}
	}
}

func TestParseVersionContainerdRuntimeVersion(t *testing.T) {
	// Node status reports "containerd://2.4.2": not an image reference, and no whitespace.
	v, err := ParseVersion("containerd://2.4.2")
	if err != nil || v.String() != "2.4.2" {
		t.Fatalf("got %v, %v", v, err)
	}
}

func TestVersionAtLeast(t *testing.T) {
	for _, tc := range []struct {
		v                   string
		major, minor, patch int
		want                bool
	}{
		{"3.5.11", 3, 5, 11, true},
		{"3.5.10", 3, 5, 11, false},
		{"3.6.0-rc.2", 3, 6, 0, false},
		{"3.6.0", 3, 6, 0, true},
		{"3.6.1-rc.0", 3, 6, 0, true},
		{"1.34.0-alpha.1", 1, 34, 0, false},
		{"2.0.0", 1, 7, 0, true},
		{"1.27.0", 1, 27, 0, true},
	} {
		if got := MustParseVersion(tc.v).AtLeast(tc.major, tc.minor, tc.patch); got != tc.want {
			t.Errorf("%s.AtLeast(%d.%d.%d) = %v", tc.v, tc.major, tc.minor, tc.patch, got)
		}
	}
}

func TestVersionJSON(t *testing.T) {
	b, err := json.Marshal(struct{ V Version }{MustParseVersion("registry.k8s.io/etcd:3.5.21-0")})
	if err != nil || string(b) != `{"V":"3.5.21"}` {
		t.Fatalf("%s %v", b, err)
	}
	var out struct{ V Version }
	if err := json.Unmarshal(b, &out); err != nil || out.V.String() != "3.5.21" {
		t.Fatalf("%+v %v", out, err)
	}
}

func TestParseComponent(t *testing.T) {
	for in, want := range map[string]Component{"apiserver": APIServer, "kube-apiserver": APIServer, "ETCD": Etcd, "cri-o": CRIO, "crio": CRIO, "kubelet": Kubelet, "containerd": Containerd} {
		if got, err := ParseComponent(in); err != nil || got != want {
			t.Errorf("ParseComponent(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseComponent("kube-proxy"); err == nil {
		t.Error("kube-proxy accepted")
	}
}

func TestTargetValidate(t *testing.T) {
	good := Target{Endpoint: "127.0.0.1:4317", HTTPEndpoint: "[::1]:4318", SamplingRatePerMillion: 1000000, ServiceInstanceID: "cp-1"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tg := range map[string]Target{
		"no port":       {Endpoint: "127.0.0.1"},
		"scheme":        {Endpoint: "http://127.0.0.1:4317"},
		"bad port":      {Endpoint: "127.0.0.1:99999"},
		"no host":       {Endpoint: ":4317"},
		"rate too high": {Endpoint: "127.0.0.1:4317", SamplingRatePerMillion: 1000001},
		"negative rate": {Endpoint: "127.0.0.1:4317", SamplingRatePerMillion: -1},
		"instance id":   {Endpoint: "127.0.0.1:4317", ServiceInstanceID: "a b"},
		"http endpoint": {Endpoint: "127.0.0.1:4317", HTTPEndpoint: "localhost"},
	} {
		if err := tg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if r := (Target{SamplingRatePerMillion: 250000}).samplingRatio(); r != "0.25" {
		t.Errorf("ratio %s", r)
	}
}
