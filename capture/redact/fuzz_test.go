package redact

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	"",
	"configmaps \"cm-1\" already exists",
	"dial tcp 203.0.113.34:443: connect: connection refused",
	"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln and password=hunter2",
	"https://bob:pw@api.corp.example.com:6443/api/v1/namespaces/x/pods/y?watch=true&token=t&labelSelector=a%3Db",
	"/api/v1/namespaces/load-2/configmaps/cm-1?fieldSelector=metadata.name%3Dcm-1",
	"/registry/pods/load-2/web-0",
	"failed to \"CreatePodSandbox\" for \"traced-pod-1_default(6e91ef8f-7183-432e-8afe-caba260b4f1f)\"",
	"connecting to shim da3e2456703acee68da0114d0a2a5061ad07eab66d448f3a23b1cf708fa32cc3",
	"::ffff:203.0.113.3 fe80::1%eth0 [2001:db8::5]:443 999.1.1.1.1 1.2.3.4.5 cafe::",
	"mail alice@example.com, user=bob node=worker-7 host=cp-1.corp.example.com:6443",
	"system:serviceaccount:team-a:builder system:node:worker-7",
	"image \"registry.corp.example.com:5000/payments/checkout:1.4.2@sha256:0f1e2d3c4b5a69788776a5b4c3d2e1f00f1e2d3c4b5a69788776a5b4c3d2e1f0\"",
	"kubelet/v1.37.2 (linux/amd64; bastion.corp.example.com) kubernetes/$Format",
	"/home/alice/.kube/config 1.1.1.1:1.1.1.1",
	"\xff\xfe invalid utf-8 203.0.113.1\xff",
}

// FuzzScrub: scrubbing free text never panics, keeps valid UTF-8 valid,
// and leaves no value pattern behind (no IP address outside the kept
// networks, e-mail address, UUID, long hex id, bearer token, JWT or
// "password=…" value).
func FuzzScrub(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	w, err := NewRecordRewriter(Options{Key: testKey})
	if err != nil {
		f.Fatal(err)
	}
	w.Value("namespace", "load-2")
	w.Value("host.name", "tc-node")
	pol := DefaultPolicy()
	f.Fuzz(func(t *testing.T, s string) {
		out := w.Text(s)
		if l := Leaks(out, pol, w.e.tok.isIssued); len(l) > 0 {
			t.Fatalf("scrub(%q) = %q still holds %q", s, out, l)
		}
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("scrub(%q) = %q is not valid UTF-8", s, out)
		}
	})
}

// FuzzValue: every kind of the policy, on any value, never panics and
// (but keep) leaves no value pattern behind.
func FuzzValue(f *testing.F) {
	kinds := []string{KindMask, KindScrub, KindValue, KindNamespace, KindName, KindPod, KindNode, KindHost,
		KindUser, KindUID, KindContainerID, KindInstance, KindIP, KindEmail, KindImage, KindAddress, KindURL,
		KindQuery, KindEtcdKey, KindUserAgent, KindPodRef, KindCRIName}
	for i, s := range fuzzSeeds {
		f.Add(uint8(i), s)
	}
	w, err := NewRecordRewriter(Options{Key: testKey})
	if err != nil {
		f.Fatal(err)
	}
	pol := DefaultPolicy()
	f.Fuzz(func(t *testing.T, k uint8, s string) {
		kind := kinds[int(k)%len(kinds)]
		j := w.e.newJob(false)
		out := j.apply(kind, s)
		if l := Leaks(out, pol, w.e.tok.isIssued); len(l) > 0 {
			t.Fatalf("%s(%q) = %q still holds %q", kind, s, out, l)
		}
		j.spanName(s)
	})
}

// FuzzRewrite: arbitrary bytes as a request never panic; what is accepted
// comes out as a request that decodes.
func FuzzRewrite(f *testing.F) {
	for _, rec := range readRecords(f, sensitiveCapture) {
		f.Add(rec)
	}
	f.Add([]byte{0x0a, 0x00})
	f.Add([]byte("junk"))
	w, err := NewRecordRewriter(Options{Key: testKey})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		out, err := w.Rewrite(rec)
		if err != nil {
			return
		}
		if _, err := w.Rewrite(out); err != nil {
			t.Fatalf("the rewritten request does not decode: %v", err)
		}
	})
}

// FuzzJSON: any input never panics; what is accepted is valid JSON.
func FuzzJSON(f *testing.F) {
	f.Add([]byte(testEvents))
	f.Add([]byte(testCluster))
	f.Add([]byte(`{"a":1}{"b":"203.0.113.1"}`))
	f.Add([]byte(`[1,"x",null,{"name":["a","b"]}]`))
	w, err := NewRecordRewriter(Options{Key: testKey})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := w.JSON(data)
		if err != nil {
			return
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		for dec.More() {
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
		}
	})
}

// FuzzPolicy: any policy text is accepted or refused, never a panic.
func FuzzPolicy(f *testing.F) {
	f.Add(DefaultPolicyYAML())
	f.Add([]byte("version: 1\nrules: [{as: name, keys: ['*x*']}]\npatterns: [{regex: '(a)', as: mask}]"))
	f.Add([]byte(`{"version":1,"base":"none"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data)
		if err != nil {
			return
		}
		if _, err := NewRecordRewriter(Options{Policy: p, Key: testKey}); err != nil {
			t.Fatalf("a parsed policy does not compile: %v", err)
		}
		_ = p.Digest()
	})
}
