package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"testing"
)

// tok computes, independently of the package, the token of v with
// testKey: the kind's prefix and the first 8 hex digits of
// HMAC-SHA256(testKey, v).
func tok(prefix, v string) string {
	m := hmac.New(sha256.New, testKey)
	m.Write([]byte(v))
	return prefix + "-" + hex.EncodeToString(m.Sum(nil))[:8]
}

// expand replaces "{prefix:value}" in s by tok(prefix, value).
func expand(s string) string {
	return regexp.MustCompile(`\{(val|ns|name|pod|node|host|user|uid|cid|inst|ip|email|reg|image):([^{}]*)\}`).
		ReplaceAllStringFunc(s, func(m string) string {
			sub := regexp.MustCompile(`^\{([a-z]+):(.*)\}$`).FindStringSubmatch(m)
			return tok(sub[1], sub[2])
		})
}

func TestValues(t *testing.T) {
	cases := []struct {
		key, in, want string
	}{
		// Kept verbatim.
		{"service.name", "kube-apiserver", "kube-apiserver"},
		{"rpc.method", "etcdserverpb.KV/Range", "etcdserverpb.KV/Range"},
		{"verb", "LIST", "LIST"},
		{"resource", "configmaps", "configmaps"},
		{"audit-id", "93ee6f84-ece7-4673-819e-18f7d9b403eb", "93ee6f84-ece7-4673-819e-18f7d9b403eb"},
		{"server.port", "6443", "6443"},
		// Pseudonyms.
		{"namespace", "load-2", "{ns:load-2}"},
		{"namespace", "kube-system", "kube-system"},
		{"namespace", "k8s.io", "k8s.io"},
		{"k8s.namespace.name", "default", "default"},
		{"name", "cm-1", "{name:cm-1}"},
		{"name", "v1.apps", "v1.apps"},
		{"k8s.pod.name", "traced-pod-1", "{pod:traced-pod-1}"},
		{"k8s.pod.uid", "6e91ef8f-7183-432e-8afe-caba260b4f1f", "{uid:6e91ef8f-7183-432e-8afe-caba260b4f1f}"},
		{"container.id", "da3e2456703acee68da0114d0a2a5061ad07eab66d448f3a23b1cf708fa32cc3", "{cid:da3e2456703acee68da0114d0a2a5061ad07eab66d448f3a23b1cf708fa32cc3}"},
		{"host.name", "tc-node", "{host:tc-node}"},
		{"service.instance.id", "etcd-0", "{inst:etcd-0}"},
		{"k8s.pod", "load-2/web-0", "{ns:load-2}/{pod:web-0}"},
		{"sandbox.name", "traced-pod-1_default_6e91ef8f-7183-432e-8afe-caba260b4f1f_0", "{pod:traced-pod-1}_default_{uid:6e91ef8f-7183-432e-8afe-caba260b4f1f}_0"},
		// Users.
		{"user", "alice", "{user:alice}"},
		{"user", "system:masters", "system:masters"},
		{"user", "system:serviceaccount:team-a:builder", "system:serviceaccount:{ns:team-a}:{name:builder}"},
		{"user", "system:node:worker-7", "system:node:{node:worker-7}"},
		{"user.name", "alice@example.com", "{email:alice@example.com}"},
		// Addresses.
		{"client.address", "203.0.113.7", "{ip:203.0.113.7}"},
		{"client.address", "127.0.0.1", "127.0.0.1"},
		{"server.address", "2001:db8::5", "{ip:2001:db8::5}"},
		{"server.address", "[2001:db8::5]:443", "[{ip:2001:db8::5}]:443"},
		{"server.address", "node-1.corp.example.com:10250", "{host:node-1.corp.example.com}:10250"},
		{"server.address", "localhost:2379", "localhost:2379"},
		{"net.sock.peer.addr", "::1", "::1"},
		{"server.address", "/scratch/kubelet/containerd.sock", "/scratch/kubelet/containerd.sock"},
		{"server.address", "/home/alice/run/crio.sock", "/home/{user:alice}/run/crio.sock"},
		// Request paths and URLs.
		{"http.target", "/api/v1/namespaces/load-2/configmaps/cm-1", "/api/v1/namespaces/{ns:load-2}/configmaps/{name:cm-1}"},
		{"url.path", "/api/v1/namespaces/load-2", "/api/v1/namespaces/{ns:load-2}"},
		{"url.path", "/api/v1/namespaces/load-2/status", "/api/v1/namespaces/{ns:load-2}/status"},
		{"url.path", "/api/v1/nodes/tc-node/status", "/api/v1/nodes/{node:tc-node}/status"},
		{"url.path", "/api/v1/namespaces/{:namespace}/pods/{:name}", "/api/v1/namespaces/{:namespace}/pods/{:name}"},
		{"url.path", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/tc-node", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name:tc-node}"},
		{"url.path", "/api/v1/watch/namespaces/load-2/pods", "/api/v1/watch/namespaces/{ns:load-2}/pods"},
		{"url.path", "/api/v1/namespaces/load-2/pods/web-0/proxy/admin/alice", "/api/v1/namespaces/{ns:load-2}/pods/{pod:web-0}/proxy/admin/alice"},
		{"url.path", "/healthz", "/healthz"},
		{"http.target", "/api/v1/configmaps?watch=true&timeoutSeconds=15&labelSelector=idx%3D2", "/api/v1/configmaps?watch=true&timeoutSeconds=15&labelSelector=idx%3D2"},
		{"http.target", "/api/v1/pods?labelSelector=app%3Dcheckout%2Ctier+in+%28web%2Capi%29", "/api/v1/pods?labelSelector=app%3D{val:checkout}%2Ctier+in+%28{val:web}%2C{val:api}%29"},
		{"http.target", "/api/v1/namespaces/kube-system/configmaps?fieldSelector=metadata.name%3Dmy-config&limit=500", "/api/v1/namespaces/kube-system/configmaps?fieldSelector=metadata.name%3D{name:my-config}&limit=500"},
		{"http.target", "/api/v1/pods?continue=eyJ2IjoibWV0YSJ9&resourceVersion=123", "/api/v1/pods?continue={val:eyJ2IjoibWV0YSJ9}&resourceVersion=123"},
		{"url.full", "https://127.0.0.1:26443/api/v1/nodes/tc-node?timeout=10s", "https://127.0.0.1:26443/api/v1/nodes/{node:tc-node}?timeout=10s"},
		{"url.full", "https://bob:hunter2@api.corp.example.com/x?token=abc&q=alice", "https://REDACTED@{host:api.corp.example.com}/x?token=REDACTED&q={val:alice}"},
		{"url.full", "unix:///run/containerd/s/448141cd8b2fa87039ceb5db3d4af2a14e1c0f953f8712ff92952c24116317b8", "unix:///run/containerd/s/{cid:448141cd8b2fa87039ceb5db3d4af2a14e1c0f953f8712ff92952c24116317b8}"},
		// Storage keys keep their resource prefix.
		{"key", "/configmaps/load-2/cm-1", "/configmaps/{ns:load-2}/{name:cm-1}"},
		{"key", "/registry/pods/load-2/web-0", "/registry/pods/{ns:load-2}/{pod:web-0}"},
		{"key", "/namespaces/load-11", "/namespaces/{ns:load-11}"},
		{"key", "/configmaps/load-2/", "/configmaps/{ns:load-2}/"},
		{"key", "/services/specs/default/kubernetes", "/services/specs/default/kubernetes"},
		{"key", "/apiregistration.k8s.io/apiservices/v1.apps", "/apiregistration.k8s.io/apiservices/v1.apps"},
		{"key", "/ipaddresses/203.0.113.96", "/ipaddresses/{ip:203.0.113.96}"},
		{"key", "/minions/tc-node", "/minions/{node:tc-node}"},
		{"key", "/acme.example.com/widgets/team-a/w1", "/acme.example.com/widgets/{ns:team-a}/{name:w1}"},
		// User agents keep their products.
		{"user_agent.original", "kubelet/v1.37.2 (linux/amd64) kubernetes/$Format", "kubelet/v1.37.2 (linux/amd64) kubernetes/$Format"},
		{"user-agent", "curl/7.88.1", "curl/7.88.1"},
		{"user_agent.original", "kubectl/v1.37.2 (linux/amd64; bastion.corp.example.com) kubernetes/abc", "kubectl/v1.37.2 (linux/amd64; {host:bastion.corp.example.com}) kubernetes/abc"},
		// Images.
		{"container.image.ref", "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"},
		{"container.image.ref", "nginx:1.27", "nginx:1.27"},
		{"container.image.ref", "localhost/pause:local", "localhost/pause:local"},
		{"container.image.ref", "registry.corp.example.com:5000/payments/checkout:1.4.2", "{reg:registry.corp.example.com}:5000/{image:payments/checkout}:1.4.2"},
		// Secrets.
		{"http.request.header.authorization", "Bearer abc.def.ghi", Masked},
		{"db.password", "hunter2", Masked},
		// Free text (the default).
		{"exception.message", `configmaps "cm-1" already exists`, `configmaps "{name:cm-1}" already exists`},
		{"exception.message", `pods "web-0" is forbidden`, `pods "{pod:web-0}" is forbidden`},
		{"exception.message", `dial tcp 203.0.113.34:443: connect: connection refused`, `dial tcp {ip:203.0.113.34}:443: connect: connection refused`},
		{"exception.message", `Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln`, `Authorization: Bearer REDACTED`},
		{"exception.message", `mail alice@example.com now`, `mail {email:alice@example.com} now`},
		{"exception.message", `RunPodSandbox for name:"web-0" uid:"6e91ef8f-7183-432e-8afe-caba260b4f1f" namespace:"default"`, `RunPodSandbox for name:"{name:web-0}" uid:"{uid:6e91ef8f-7183-432e-8afe-caba260b4f1f}" namespace:"default"`},
		{"exception.message", `for "web-0_team-a(6e91ef8f-7183-432e-8afe-caba260b4f1f)"`, `for "{pod:web-0}_{ns:team-a}({uid:6e91ef8f-7183-432e-8afe-caba260b4f1f})"`},
		{"exception.message", `version v1.37.2 on linux/amd64, 3 retries`, `version v1.37.2 on linux/amd64, 3 retries`},
		{"exception.message", `image digest sha256:0f1e2d3c4b5a69788776a5b4c3d2e1f00f1e2d3c4b5a69788776a5b4c3d2e1f0`, `image digest sha256:0f1e2d3c4b5a69788776a5b4c3d2e1f00f1e2d3c4b5a69788776a5b4c3d2e1f0`},
		{"exception.message", `GET /api/v1/namespaces/load-2/pods/web-0 failed`, `GET /api/v1/namespaces/{ns:load-2}/pods/{pod:web-0} failed`},
		{"warnings", `open /registry/secrets/load-2/s-1: denied`, `open /registry/secrets/{ns:load-2}/{name:s-1}: denied`},
	}
	for _, tc := range cases {
		w, err := NewRecordRewriter(Options{Key: testKey})
		if err != nil {
			t.Fatal(err)
		}
		want := expand(tc.want)
		if got := w.Value(tc.key, tc.in); got != want {
			t.Errorf("%s=%q:\n got %q\nwant %q", tc.key, tc.in, got, want)
		}
	}
}

func TestSpanNames(t *testing.T) {
	cases := []struct{ in, want string }{
		{"GET /api/v1/namespaces/{:namespace}/configmaps/{:name}", "GET /api/v1/namespaces/{:namespace}/configmaps/{:name}"},
		{"PATCH /apis/flowcontrol.apiserver.k8s.io/v1/flowschemas/{:name}/status", "PATCH /apis/flowcontrol.apiserver.k8s.io/v1/flowschemas/{:name}/status"},
		{"GET /api/v1/namespaces/team-a/pods/web-0", "GET /api/v1/namespaces/{ns:team-a}/pods/{pod:web-0}"},
		{"etcdserverpb.KV/Range", "etcdserverpb.KV/Range"},
		{"runtime.v1.RuntimeService/RunPodSandbox", "runtime.v1.RuntimeService/RunPodSandbox"},
		{"HTTP GET", "HTTP GET"},
		{"Create etcd3", "Create etcd3"},
		{"audit", "audit"},
		{"connect 203.0.113.7", "connect {ip:203.0.113.7}"},
	}
	for _, tc := range cases {
		w, _ := NewRecordRewriter(Options{Key: testKey})
		// "audit" is a namespace here: span names must not be matched
		// against known names.
		w.Value("namespace", "audit")
		j := w.e.newJob(false)
		if got, want := j.spanName(tc.in), expand(tc.want); got != want {
			t.Errorf("span name %q: got %q, want %q", tc.in, got, want)
		}
	}
}

// TestKnownNamesInText: a name seen in a structured field is replaced in
// free text too, also inside longer words such as an Event's name.
func TestKnownNamesInText(t *testing.T) {
	w, _ := NewRecordRewriter(Options{Key: testKey})
	w.Value("host.name", "tc-node")
	w.Value("namespace", "team-a")
	for in, want := range map[string]string{
		"node tc-node is NotReady":                  "node {host:tc-node} is NotReady",
		"event tc-node.18eb427492145be2 dropped":    "event {host:tc-node}.18eb427492145be2 dropped",
		"moved team-a/web to tc-node.example.com":   "moved {ns:team-a}/web to {host:tc-node}.example.com",
		"the team-a_web_0 sandbox":                  "the {ns:team-a}_web_0 sandbox",
		"kube-system and default are kept":          "kube-system and default are kept",
		"tc-nodes and xtc-node are other words too": "tc-nodes and xtc-node are other words too",
	} {
		if got := w.Text(in); got != expand(want) {
			t.Errorf("%q: got %q, want %q", in, got, expand(want))
		}
	}
}
