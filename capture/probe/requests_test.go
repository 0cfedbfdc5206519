package probe

import (
	"strings"
	"testing"
)

func TestReadRequests(t *testing.T) {
	reqs, err := ReadRequests(strings.NewReader(`[{"verb":"list","path":"/api/v1/namespaces/{namespace}/configmaps?limit=5"},{"verb":"create"},{"verb":"delete"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 3 || reqs[0].Verb != VerbList || reqs[1].Verb != VerbCreate || reqs[2].Path != "" {
		t.Fatalf("requests %+v", reqs)
	}
	if err := ValidateRequests(DefaultRequests()); err != nil {
		t.Fatalf("default mix: %v", err)
	}
}

func TestReadRequestsRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`[]`, "empty"},
		{`[{"verb":"watch","path":"/api/v1/pods"}]`, "unknown verb"},
		{`[{"verb":"get","path":"api/v1/pods"}]`, "absolute API path"},
		{`[{"verb":"delete","path":"/api/v1/namespaces/kube-system"}]`, "scratch ConfigMap only"},
		{`[{"verb":"get","path":"/","extra":1}]`, "unknown field"},
		{`{"verb":"get"}`, "cannot unmarshal"},
	} {
		_, err := ReadRequests(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error containing %q, got %v", tc.in, tc.want, err)
		}
	}
}

func FuzzReadRequests(f *testing.F) {
	f.Add(`[{"verb":"list","path":"/api/v1/pods"},{"verb":"create"}]`)
	f.Add(`[{"verb":"patch"}]`)
	f.Add(`[`)
	f.Fuzz(func(t *testing.T, in string) {
		reqs, err := ReadRequests(strings.NewReader(in))
		if err != nil {
			return
		}
		if len(reqs) == 0 || ValidateRequests(reqs) != nil {
			t.Fatalf("accepted an invalid mix: %+v", reqs)
		}
	})
}

func TestNeedsNamespace(t *testing.T) {
	if !needsNamespace(DefaultRequests()) {
		t.Error("the default mix writes: it needs a scratch namespace")
	}
	if needsNamespace([]Request{{Verb: VerbList, Path: "/api/v1/pods"}, {Verb: VerbGet, Path: "/api/v1/namespaces/default"}}) {
		t.Error("reads of other paths need no scratch namespace")
	}
	if !needsNamespace([]Request{{Verb: VerbList, Path: "/api/v1/namespaces/" + NamespacePlaceholder + "/secrets"}}) {
		t.Errorf("a %s path needs the scratch namespace", NamespacePlaceholder)
	}
}
