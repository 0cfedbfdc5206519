package redact

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	c, err := p.compile()
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"service.name":                      KindKeep,
		"server.port":                       KindKeep,
		"network.peer.port":                 KindKeep,
		"rpc.grpc.status_code":              KindKeep,
		"namespace":                         KindNamespace,
		"k8s.pod.uid":                       KindUID,
		"k8s.replicaset.uid":                KindUID,
		"http.request.header.authorization": KindMask,
		"http.request.header.cookie":        KindMask,
		"key":                               KindEtcdKey,
		"exception.message":                 KindScrub,
		"some.unknown.key":                  KindScrub,
	} {
		if got := c.kindOf(key); got != want {
			t.Errorf("kind of %q = %q, want %q", key, got, want)
		}
	}
	if !strings.HasPrefix(p.Digest(), "sha256:") || p.Digest() != DefaultPolicy().Digest() {
		t.Errorf("digest %q is not stable", p.Digest())
	}
	if !strings.Contains(string(DefaultPolicyYAML()), "keep_networks") {
		t.Error("DefaultPolicyYAML")
	}
}

func TestParsePolicy(t *testing.T) {
	// A user policy is tried before the default: here audit-id, kept by
	// default, is pseudonymised; unknown keys are dropped; a value
	// pattern masks ticket numbers.
	p, err := ParsePolicy([]byte(`
version: 1
rules:
  - as: value
    keys: [audit-id]
  - as: scrub
    keys: [exception.message]
default: drop
keep_values: [team-public]
patterns:
  - name: ticket
    regex: 'TICKET-([0-9]+)'
    as: mask
`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Digest() == DefaultPolicy().Digest() {
		t.Error("a changed policy has the default digest")
	}
	w, err := NewRecordRewriter(Options{Policy: p, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ key, in, want string }{
		{"audit-id", "93ee6f84-ece7-4673-819e-18f7d9b403eb", tok("uid", "93ee6f84-ece7-4673-819e-18f7d9b403eb")},
		{"namespace", "team-public", "team-public"},
		{"namespace", "load-2", tok("ns", "load-2")},
		{"exception.message", "see TICKET-1234 for alice@example.com", "see TICKET-REDACTED for " + tok("email", "alice@example.com")},
		{"service.name", "etcd", "etcd"},
		{"something.else", "etcd", ""},
	} {
		if got := w.Value(c.key, c.in); got != c.want {
			t.Errorf("%s=%q: got %q, want %q", c.key, c.in, got, c.want)
		}
	}
	if k := w.e.pol.kindOf("something.else"); k != KindDrop {
		t.Errorf("default kind %q", k)
	}

	// Standing alone, JSON, from a file.
	dir := t.TempDir()
	path := filepath.Join(dir, "p.json")
	if err := os.WriteFile(path, []byte(`{"version":1,"base":"none","keep":["service.name"],"default":"mask"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	alone, err := LoadPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := alone.compile()
	if c.kindOf("service.name") != KindKeep || c.kindOf("namespace") != KindMask {
		t.Errorf("base none: %q %q", c.kindOf("service.name"), c.kindOf("namespace"))
	}

	// The example policy in testdata parses.
	if _, err := LoadPolicy("../../testdata/redact/policy.yaml"); err != nil {
		t.Errorf("example policy: %v", err)
	}
}

func TestBadPolicies(t *testing.T) {
	for name, doc := range map[string]string{
		"no version":      `keep: [a]`,
		"newer version":   `version: 2`,
		"unknown field":   "version: 1\nkeeep: [a]",
		"unknown kind":    "version: 1\nrules: [{as: hash, keys: [a]}]",
		"rule no keys":    "version: 1\nrules: [{as: name}]",
		"rule no kind":    "version: 1\nrules: [{keys: [a]}]",
		"bad default":     "version: 1\ndefault: url",
		"bad span names":  "version: 1\nspan_names: hide",
		"bad regex":       "version: 1\nkeep_value_patterns: ['(']",
		"bad pattern":     "version: 1\npatterns: [{regex: '[', as: mask}]",
		"pattern kind":    "version: 1\npatterns: [{regex: 'x', as: url}]",
		"bad network":     "version: 1\nkeep_networks: [203.0.113.0/33]",
		"bad base":        "version: 1\nbase: mine",
		"empty key":       "version: 1\nkeep: ['']",
		"not yaml at all": "\x00\x01",
	} {
		if _, err := ParsePolicy([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := LoadPolicy(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
	if _, err := NewRecordRewriter(Options{Key: []byte("short")}); err == nil {
		t.Error("short key accepted")
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := os.WriteFile(path, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKey(path)
	if err != nil || string(k) != string(testKey) {
		t.Fatalf("LoadKey: %q, %v", k, err)
	}
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(path); err == nil {
		t.Error("a short key file was accepted")
	}
	a, err := GenerateKey()
	if err != nil || len(a) != KeySize {
		t.Fatalf("GenerateKey: %d bytes, %v", len(a), err)
	}
	b, _ := GenerateKey()
	if string(a) == string(b) || KeyFingerprint(a) == KeyFingerprint(b) || len(KeyFingerprint(a)) != 16 {
		t.Error("two generated keys are the same, or so are their fingerprints")
	}
}

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		glob, s string
		want    bool
	}{
		{"*.port", "server.port", true},
		{"*.port", "port", false},
		{"k8s.*.uid", "k8s.pod.uid", true},
		{"k8s.*.uid", "k8s.uid", false},
		{"*token", "token", true},
		{"*secret*", "x.secret.y", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
		{"exact", "exact", true},
	} {
		if got := globMatch(strings.Split(c.glob, "*"), c.s); got != c.want {
			t.Errorf("%q ~ %q = %v", c.glob, c.s, got)
		}
	}
}
