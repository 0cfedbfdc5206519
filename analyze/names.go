package analyze

import "strings"

// nameFact is what a span name alone says about a span.
type nameFact struct {
	done       bool
	long       bool   // a long-lived stream (watch, keep-alive)
	longReason string // "watch" or "stream"
	etcd       int32  // etcd RPC method ("KV/Range") string id, 0 if not an etcd RPC
	cri        int32  // CRI method ("RuntimeService/RunPodSandbox") string id, 0 if not CRI
	podSync    bool   // a kubelet pod-level span (syncPod, syncTerminatingPod, ...)
}

// nameFacts caches nameFact per span-name string id.
type nameFacts struct {
	st    *store
	facts []nameFact
}

func (nf *nameFacts) get(name int32) *nameFact {
	if int(name) >= len(nf.facts) {
		n := max(int(name)+1, 2*len(nf.facts))
		nf.facts = append(nf.facts, make([]nameFact, n-len(nf.facts))...)
	}
	f := &nf.facts[name]
	if f.done {
		return f
	}
	f.done = true
	s := nf.st.strs[name]
	f.longReason, f.long = longLivedName(s)
	switch {
	case strings.HasPrefix(s, "etcdserverpb."):
		f.etcd = nf.st.internString(strings.TrimPrefix(s, "etcdserverpb."))
	case strings.HasPrefix(s, "runtime.v1."):
		f.cri = nf.st.internString(strings.TrimPrefix(s, "runtime.v1."))
	case strings.HasPrefix(s, "runtime.v1alpha2."):
		f.cri = nf.st.internString(strings.TrimPrefix(s, "runtime.v1alpha2."))
	}
	switch s {
	case "syncPod", "syncTerminatingPod", "syncTerminatedPod", "syncTerminatingRuntimePod":
		f.podSync = true
	}
	return f
}

// keyPrefix returns the resource part of a kube-apiserver storage key:
// "/configmaps" for "/configmaps/ns/name" or "/registry/configmaps/ns/name",
// "/apiregistration.k8s.io/apiservices" for a key of a resource in an API
// group (first segment holds a dot); "" for an empty key.
func keyPrefix(key string) string {
	k := strings.TrimPrefix(key, "/")
	k = strings.TrimPrefix(k, "registry/")
	i := strings.IndexByte(k, '/')
	if i < 0 {
		i = len(k)
	} else if strings.IndexByte(k[:i], '.') >= 0 {
		// An API group ("apiregistration.k8s.io/apiservices/..."): keep
		// group and resource.
		if j := strings.IndexByte(k[i+1:], '/'); j >= 0 {
			i += 1 + j
		} else {
			i = len(k)
		}
	}
	if i == 0 {
		return ""
	}
	return "/" + k[:i]
}
