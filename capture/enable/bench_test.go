package enable

import "testing"

func BenchmarkEdits(b *testing.B) {
	toml := fixture(b, "containerd/config-1.7.toml")
	kc := fixture(b, "kubeadm-1.37/kubelet-config.yaml")
	mf := fixture(b, "kubeadm-1.37/kube-apiserver.yaml")
	v := MustParseVersion("1.7.24")
	for i := 0; i < b.N; i++ {
		EditContainerdConfig(toml, v, target)
		EditKubeletConfig(kc, MustParseVersion("1.26.0"), target)
		EditStaticPod(mf, StaticPodEdit{Component: APIServer, Target: target, TracingConfigPath: tracingPath})
	}
}
