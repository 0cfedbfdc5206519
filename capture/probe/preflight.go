package probe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/kubernetes"
)

// ErrNotPossible is wrapped by the errors of Check that say why a probe
// cannot get traces from this cluster as this caller.
var ErrNotPossible = errors.New("probe traces are not possible")

// Groups whose incoming trace context kube-apiserver continues (1.33+).
const (
	GroupMasters    = "system:masters"
	GroupMonitoring = "system:monitoring"
)

// minVersion is the first kube-apiserver that continues a privileged
// caller's trace and ignores everyone else's.
var minVersion = version.MajorMinor(1, 33)

// Preflight is what Check found out.
type Preflight struct {
	// APIServerVersion is the apiserver's gitVersion, e.g. "v1.37.2".
	APIServerVersion string `json:"apiserver_version"`
	// User and Groups are the caller as the apiserver authenticated it.
	User   string   `json:"user"`
	Groups []string `json:"groups"`
}

// Check asks the apiserver for its version (discovery) and for the
// caller's identity (SelfSubjectReview) and returns an error wrapping
// ErrNotPossible when the apiserver would not continue the probe's traces.
func Check(ctx context.Context, client kubernetes.Interface) (*Preflight, error) {
	info, err := client.Discovery().ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("get kube-apiserver version: %w", err)
	}
	pf := &Preflight{APIServerVersion: info.GitVersion}
	v, err := version.ParseGeneric(info.GitVersion)
	if err != nil {
		v, err = version.ParseGeneric(info.Major + "." + strings.TrimSuffix(info.Minor, "+"))
	}
	if err != nil {
		return pf, fmt.Errorf("parse kube-apiserver version %q: %w", info.GitVersion, err)
	}
	if !v.AtLeast(minVersion) {
		return pf, fmt.Errorf("%w: kube-apiserver %s does not continue a caller's traceparent in a way a probe can rely on: "+
			"from Kubernetes 1.33 it continues the sampled trace of system:masters and system:monitoring callers; "+
			"on this version use a capture window with sampling instead ('trace-capture capture')", ErrNotPossible, info.GitVersion)
	}
	ssr, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return pf, fmt.Errorf("ask kube-apiserver who the caller is (SelfSubjectReview): %w", err)
	}
	pf.User = ssr.Status.UserInfo.Username
	pf.Groups = slices.Clone(ssr.Status.UserInfo.Groups)
	slices.Sort(pf.Groups)
	if !slices.Contains(pf.Groups, GroupMasters) && !slices.Contains(pf.Groups, GroupMonitoring) {
		groups := "no groups"
		if len(pf.Groups) > 0 {
			groups = "groups " + strings.Join(pf.Groups, ", ")
		}
		return pf, fmt.Errorf("%w: user %q (%s) is in neither %s nor %s, so kube-apiserver %s starts a new trace for each of its requests "+
			"and only links the probe's traceparent; at sampling rate 0 nothing would be exported: "+
			"run the probe with a kubeconfig whose user is in %s (a cluster-admin certificate) or %s",
			ErrNotPossible, pf.User, groups, GroupMasters, GroupMonitoring, info.GitVersion, GroupMasters, GroupMonitoring)
	}
	return pf, nil
}
