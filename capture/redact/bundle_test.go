package redact

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
)

var reToken = regexp.MustCompile(`^(val|ns|name|pod|node|host|user|uid|cid|inst|ip|email|reg|image)-[0-9a-f]{8,64}$`)

const sensitiveCapture = "../../testdata/redact/sensitive.otlp.jsonl"

// testLog and testEvents are the non-span files of the test bundles: a
// tool log and a Kubernetes Events dump, both full of names.
const testLog = `time=2026-11-25T10:20:00Z level=INFO msg="receiver listening" grpc=198.51.100.1:4317 http=[2001:db8::1]:4318
time=2026-11-25T10:20:01Z level=INFO msg="component enabled" node=worker-7 host=cp-1.corp.example.com user=alice
time=2026-11-25T10:20:02Z level=WARN msg="request refused" peer=198.51.100.40:51234 reason=budget Authorization="Bearer abcdefghijklmnopqrstuvwxyz012345"
time=2026-11-25T10:20:03Z level=INFO msg="watching" namespace=load-2 object=cm-1 pod=traced-pod-1 node=tc-node
`

const testEvents = `{"apiVersion":"v1","kind":"List","items":[
 {"kind":"Event","metadata":{"name":"checkout-7d9f8-abcde.18eb427492145be2","namespace":"team-payments","uid":"11111111-2222-4333-8444-555555555555"},
  "involvedObject":{"kind":"Pod","namespace":"team-payments","name":"checkout-7d9f8-abcde","uid":"0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"},
  "reason":"Scheduled","message":"Successfully assigned team-payments/checkout-7d9f8-abcde to worker-7","source":{"component":"default-scheduler","host":"worker-7"},"count":1},
 {"kind":"Event","metadata":{"name":"traced-pod-1.18eb428e13f99c8d","namespace":"load-2"},
  "involvedObject":{"kind":"Pod","namespace":"load-2","name":"traced-pod-1"},
  "reason":"FailedCreatePodSandBox","message":"Failed to create pod sandbox: pulling image \"registry.corp.example.com:5000/payments/checkout:1.4.2\" on tc-node","count":3}
]}
`

const testCluster = `{"nodes":[{"name":"worker-7","internalIP":"198.51.100.7","hostname":"worker-7.corp.example.com"},{"name":"tc-node","internalIP":"198.51.100.8"}],"apiserver":{"version":"v1.37.2","endpoint":"https://cp-1.corp.example.com:6443"}}`

type testCase struct {
	Name, Capture string
	// Exact: the analysis of the redacted bundle equals the original's
	// without mapping tokens back (no concrete names in span names).
	Exact bool
}

var testCases = []testCase{
	{"apiserver-etcd", realCaptures[0], true},
	{"kubelet-containerd-apiserver-etcd", realCaptures[1], true},
	{"sensitive", sensitiveCapture, false},
}

// redactCase builds the input bundle of tc in dir, redacts it with key
// and returns both paths and the mapping file.
func redactCase(t *testing.T, tc testCase, dir string, key []byte) (in, out, mapping string, rep Report) {
	t.Helper()
	recs := readRecords(t, tc.Capture)
	in = writeBundle(t, dir, "tc-node", recs, []extraFile{
		{"logs/trace-capture.log", testLog},
		{"events/events.json", testEvents},
	}, testCluster)
	out = filepath.Join(dir, "clean.tgz")
	mapping = filepath.Join(dir, "mapping.json")
	rep, err := Bundle(t.Context(), in, out, Options{Key: key, MappingFile: mapping})
	if err != nil {
		t.Fatal(err)
	}
	return in, out, mapping, rep
}

// keptValues are the values the default policy keeps on purpose
// (built-in names that identify no one).
var keptValues = map[string]bool{
	"": true, "default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true,
	"kubernetes": true, "k8s.io": true, "localhost": true, "127.0.0.1": true,
}

// sensitiveValues collects, independently of the redactor, the values in
// the input that name something: the values of identifying attribute
// keys, the namespace and name segments of request paths and storage
// keys, and a hand-made list of what the test files hold.
func sensitiveValues(t *testing.T, recs [][]byte) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	add := func(v string) {
		if !keptValues[v] && len(v) >= 3 && !strings.HasPrefix(v, "{") && !regexp.MustCompile(`^v[0-9]+\.`).MatchString(v) {
			out[v] = true
		}
	}
	identifying := map[string]bool{
		"namespace": true, "name": true, "k8s.pod.name": true, "k8s.namespace.name": true, "k8s.pod.uid": true,
		"k8s.node.name": true, "container.id": true, "sandbox.id": true, "task.container.id": true, "id": true,
		"host.name": true, "service.instance.id": true, "user": true, "user.name": true, "enduser.id": true,
	}
	reSeg := regexp.MustCompile(`/namespaces/([^/?]+)(?:/[a-z]+/([^/?]+))?`)
	var walk func(pcommon.Map)
	walk = func(m pcommon.Map) {
		m.Range(func(k string, v pcommon.Value) bool {
			s := v.AsString()
			switch {
			case identifying[k]:
				add(s)
			case k == "key":
				parts := strings.Split(strings.TrimPrefix(s, "/registry"), "/")
				for _, p := range parts[2:] {
					if p != "specs" && p != "endpoints" && !strings.Contains(p, ".k8s.io") {
						add(p)
					}
				}
			case k == "http.target" || k == "url.path" || k == "url.full" || k == "url":
				for _, m := range reSeg.FindAllStringSubmatch(s, -1) {
					add(m[1])
					add(m[2])
				}
			case k == "client.address" || k == "network.peer.address" || k == "net.sock.peer.addr" || k == "server.address":
				if !strings.HasPrefix(s, "/") {
					add(s)
				}
			}
			return true
		})
	}
	for _, rec := range recs {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			walk(rs.Resource().Attributes())
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				sps := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < sps.Len(); k++ {
					walk(sps.At(k).Attributes())
					for e := 0; e < sps.At(k).Events().Len(); e++ {
						walk(sps.At(k).Events().At(e).Attributes())
					}
				}
			}
		}
	}
	for _, v := range []string{
		// In the test log, events, cluster facts and manifest notes.
		"198.51.100.1", "2001:db8::1", "worker-7", "cp-1.corp.example.com", "alice", "198.51.100.40",
		"abcdefghijklmnopqrstuvwxyz012345", "load-2", "cm-1", "traced-pod-1", "tc-node", "team-payments",
		"checkout-7d9f8-abcde", "11111111-2222-4333-8444-555555555555", "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
		"registry.corp.example.com", "198.51.100.7", "198.51.100.8", "worker-7.corp.example.com", "alice@example.com",
	} {
		add(v)
	}
	if strings.Contains(string(recs[0]), "team-payments") || len(recs) < 10 {
		for _, v := range []string{
			// What the sensitive capture hides in free text and secrets.
			"admin", "alice@corp.example.com", "deployer", "db-credentials", "hunter2pass", "svc-user",
			"s3cr3t-t0ken-value", "Tr0ub4dor", "203.0.113.34", "2001:db8::42", "webhook.team-payments.svc",
			"eyJhbGciOiJIUzI1NiJ9", "bastion.corp.example.com", "etcd-1.corp.example.com", "etcd-member-1",
			"apiserver-7fq2k9x", "9c2b7a6e5d4c3b2a19081726354453627180918a7b6c5d4e3f2a1b0c9d8e7f60",
			"payments/checkout",
		} {
			add(v)
		}
	}
	return out
}

// vocabulary returns the words of the input that are structure, not
// names: attribute keys, span and scope names, and the values of the
// attributes that say what a span is (resource, verb, rpc.method, ...).
// A name that is also such a word ("system" is a priority level and a
// word of the key rpc.system.name) is not looked for.
func vocabulary(t *testing.T, recs [][]byte) map[string]bool {
	t.Helper()
	words := map[string]bool{}
	split := func(s string) {
		for _, w := range regexp.MustCompile(`[^A-Za-z0-9-]+`).Split(s, -1) {
			words[w] = true
		}
	}
	structural := map[string]bool{"resource": true, "verb": true, "rpc.method": true, "rpc.service": true, "type": true,
		"group": true, "api-group": true, "scope": true, "subresource": true, "http.request.method": true}
	keys := func(m pcommon.Map) {
		m.Range(func(k string, v pcommon.Value) bool {
			split(k)
			if structural[k] {
				split(v.AsString())
			}
			return true
		})
	}
	for _, rec := range recs {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			keys(rs.Resource().Attributes())
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j)
				split(ss.Scope().Name())
				for k := 0; k < ss.Spans().Len(); k++ {
					sp := ss.Spans().At(k)
					if !strings.Contains(sp.Name(), "/namespaces/team") { // the sensitive capture's concrete routes
						split(sp.Name())
					}
					keys(sp.Attributes())
				}
			}
		}
	}
	return words
}

// TestNoOriginalSurvives searches every byte of the redacted bundle (the
// decompressed tar stream and the decompressed content of each span
// archive) for every value that names something in the input.
func TestNoOriginalSurvives(t *testing.T) {
	for _, tc := range testCases {
		t.Run(tc.Name, func(t *testing.T) {
			dir := t.TempDir()
			_, out, mappingPath, rep := redactCase(t, tc, dir, testKey)
			recs := readRecords(t, tc.Capture)
			values := sensitiveValues(t, recs)
			m, err := ReadMapping(mappingPath)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range m.Entries {
				values[e.Original] = true
			}
			vocab := vocabulary(t, recs)
			for v := range values {
				if vocab[v] {
					delete(values, v)
				}
			}
			if len(values) < 20 {
				t.Fatalf("only %d sensitive values collected", len(values))
			}
			all := allBytes(t, out)
			var leaked []string
			for _, v := range sortedKeys(values) {
				if len(v) < 3 {
					continue
				}
				if containsWord(all, v) {
					leaked = append(leaked, v)
				}
			}
			for _, v := range leaked {
				i := indexWord(all, v)
				lo, hi := max(0, i-80), min(len(all), i+len(v)+80)
				t.Errorf("%q survives: …%q…", v, all[lo:hi])
			}
			// The mapping stays out of the bundle and is private.
			if fi, err := os.Stat(mappingPath); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("mapping file mode: %v, %v", fi, err)
			}
			if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("bundle mode: %v, %v", fi, err)
			}
			// The manifest carries the report, and it names no original.
			var got *bundle.Manifest
			got, err = bundle.WalkFile(out, bundle.Limits{}, bundle.WalkFuncs{})
			if err != nil {
				t.Fatal(err)
			}
			var mr Report
			if err := json.Unmarshal(got.Redaction, &mr); err != nil {
				t.Fatalf("manifest redaction report: %v", err)
			}
			if mr.Spans != rep.Spans || mr.PolicyDigest != DefaultPolicy().Digest() || mr.KeyFingerprint != KeyFingerprint(testKey) ||
				mr.Replaced[KindNamespace] == 0 || mr.Distinct[KindHost] == 0 || len(mr.Files) != 2 {
				t.Errorf("manifest report %+v", mr)
			}
			for _, f := range mr.Files {
				if f.Action != FileScrubbedText && f.Action != FileScrubbedJSON {
					t.Errorf("file %s: %s", f.Name, f.Action)
				}
			}
			for _, s := range got.Sources {
				if s.Host != "" && !reToken.MatchString(s.Host) {
					t.Errorf("source host %q is not a token", s.Host)
				}
			}
		})
	}
}
