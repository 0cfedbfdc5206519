package probe

import (
	"errors"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeCluster answers discovery with gitVersion and SelfSubjectReviews
// with user and groups.
func fakeCluster(t *testing.T, gitVersion, major, minor, user string, groups ...string) (*fake.Clientset, *int) {
	t.Helper()
	c := fake.NewClientset()
	c.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: gitVersion, Major: major, Minor: minor}
	reviews := 0
	c.PrependReactor("create", "selfsubjectreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		reviews++
		return true, &authenticationv1.SelfSubjectReview{Status: authenticationv1.SelfSubjectReviewStatus{
			UserInfo: authenticationv1.UserInfo{Username: user, Groups: groups}}}, nil
	})
	return c, &reviews
}

func TestCheckAllows(t *testing.T) {
	for _, tc := range []struct {
		name, git, major, minor string
		groups                  []string
	}{
		{"masters", "v1.37.2", "1", "37", []string{"system:authenticated", GroupMasters}},
		{"monitoring", "v1.33.0", "1", "33", []string{GroupMonitoring, "system:authenticated"}},
		{"vendor suffix", "v1.34.1+k3s1", "1", "34+", []string{GroupMasters}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := fakeCluster(t, tc.git, tc.major, tc.minor, "admin", tc.groups...)
			pf, err := Check(t.Context(), c)
			if err != nil {
				t.Fatal(err)
			}
			if pf.User != "admin" || pf.APIServerVersion != tc.git || len(pf.Groups) != len(tc.groups) {
				t.Fatalf("preflight %+v", pf)
			}
		})
	}
}

func TestCheckRefusesOldAPIServer(t *testing.T) {
	c, reviews := fakeCluster(t, "v1.32.9", "1", "32", "admin", GroupMasters)
	pf, err := Check(t.Context(), c)
	if !errors.Is(err, ErrNotPossible) {
		t.Fatalf("want ErrNotPossible, got %v", err)
	}
	for _, want := range []string{"v1.32.9", "1.33", "trace-capture capture"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not mention %q", err, want)
		}
	}
	if pf == nil || pf.APIServerVersion != "v1.32.9" || *reviews != 0 {
		t.Fatalf("preflight %+v, %d reviews (want none: the version alone decides)", pf, *reviews)
	}
}

func TestCheckRefusesOrdinaryUser(t *testing.T) {
	c, _ := fakeCluster(t, "v1.37.2", "1", "37", "alice", "system:authenticated", "devs")
	pf, err := Check(t.Context(), c)
	if !errors.Is(err, ErrNotPossible) {
		t.Fatalf("want ErrNotPossible, got %v", err)
	}
	for _, want := range []string{`"alice"`, "devs, system:authenticated", GroupMasters, GroupMonitoring, "new trace"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not mention %q", err, want)
		}
	}
	if pf.User != "alice" {
		t.Fatalf("preflight %+v", pf)
	}
}

func TestCheckRefusesUserWithoutGroups(t *testing.T) {
	c, _ := fakeCluster(t, "v1.37.2", "1", "37", "bob")
	_, err := Check(t.Context(), c)
	if !errors.Is(err, ErrNotPossible) || !strings.Contains(err.Error(), "no groups") {
		t.Fatalf("want a refusal saying the user has no groups, got %v", err)
	}
}

func TestCheckReportsAPIErrors(t *testing.T) {
	c, _ := fakeCluster(t, "v1.37.2", "1", "37", "admin", GroupMasters)
	c.PrependReactor("create", "selfsubjectreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("the server could not find the requested resource")
	})
	_, err := Check(t.Context(), c)
	if err == nil || errors.Is(err, ErrNotPossible) || !strings.Contains(err.Error(), "SelfSubjectReview") {
		t.Fatalf("want an API error naming SelfSubjectReview, got %v", err)
	}

	c, _ = fakeCluster(t, "garbage", "", "", "admin", GroupMasters)
	if _, err := Check(t.Context(), c); err == nil || errors.Is(err, ErrNotPossible) || !strings.Contains(err.Error(), "parse kube-apiserver version") {
		t.Fatalf("want a version parse error, got %v", err)
	}
}
