package cluster

import (
	"context"
	"fmt"
	"strings"

	authv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Permission is one thing a run does through the API.
type Permission struct {
	Verb, Group, Resource, Subresource string
	// Namespace is "" for cluster-scoped resources and for "in every namespace" (the run's
	// namespace has a generated name).
	Namespace string
	Name      string
	// Why says what it is for.
	Why string
}

func (p Permission) String() string {
	r := p.Resource
	if p.Subresource != "" {
		r += "/" + p.Subresource
	}
	if p.Group != "" {
		r += "." + p.Group
	}
	where := ""
	switch {
	case p.Namespace != "":
		where = " in namespace " + p.Namespace
	case p.Name != "":
		where = " named " + p.Name
	}
	return fmt.Sprintf("%s %s%s (%s)", p.Verb, r, where, p.Why)
}

// RequiredPermissions lists what a cluster capture does through the API (docs/rbac.md shows the
// same list as a ClusterRole).
func RequiredPermissions(openshift bool) []Permission {
	return requiredPermissions(openshift)
}

func requiredPermissions(openshift bool) []Permission {
	ps := []Permission{
		{Verb: "list", Resource: "nodes", Why: "find the nodes, their roles and versions"},
		{Verb: "patch", Resource: "nodes", Why: "record the journal location on each node before changing it"},
		{Verb: "list", Resource: "pods", Namespace: "kube-system", Why: "read the control-plane mirror pods"},
		{Verb: "create", Resource: "namespaces", Why: "the run's short-lived namespace"},
		{Verb: "delete", Resource: "namespaces", Why: "remove the run's namespace"},
		{Verb: "list", Resource: "namespaces", Why: "find earlier runs' namespaces"},
		{Verb: "get", Resource: "namespaces", Why: "verify the run's namespace is gone"},
		{Verb: "create", Resource: "serviceaccounts", Why: "the agents' service account"},
		{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Why: "let the agents delete their own namespace once the CLI is gone"},
		{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings", Why: "bind that role"},
		{Verb: "delete", Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Why: "remove that role"},
		{Verb: "delete", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings", Why: "remove that binding"},
		{Verb: "get", Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Why: "verify the role is gone"},
		{Verb: "get", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings", Why: "verify the binding is gone"},
		{Verb: "create", Group: "apps", Resource: "daemonsets", Why: "the agents"},
		{Verb: "list", Resource: "pods", Why: "find the agent pods and why one is not ready"},
		{Verb: "create", Resource: "pods", Subresource: "portforward", Why: "reach the agents' loopback control port"},
		{Verb: "list", Resource: "events", Why: "explain agents that are not ready, and the window's Events timeline"},
	}
	if openshift {
		ps = append(ps,
			Permission{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "rolebindings", Why: "let the agents use the privileged SCC"},
			Permission{Verb: "use", Group: "security.openshift.io", Resource: "securitycontextconstraints", Name: "privileged", Why: "run the privileged agents"},
		)
	}
	return ps
}

// missingPermissions asks the API server (SelfSubjectAccessReview) for each permission and
// returns those denied.
func missingPermissions(ctx context.Context, c kubernetes.Interface, ps []Permission) ([]string, error) {
	var missing []string
	for _, p := range ps {
		ssar := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
			Verb: p.Verb, Group: p.Group, Resource: p.Resource, Subresource: p.Subresource, Namespace: p.Namespace, Name: p.Name,
		}}}
		res, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, ssar, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("check permission to %s: %w", p, err)
		}
		if !res.Status.Allowed {
			m := p.String()
			if r := strings.TrimSpace(res.Status.Reason); r != "" {
				m += ": " + r
			}
			missing = append(missing, m)
		}
	}
	return missing, nil
}
