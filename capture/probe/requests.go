package probe

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Verbs of a Request.
const (
	VerbGet    = "get"
	VerbList   = "list"
	VerbCreate = "create"
	VerbPatch  = "patch"
	VerbDelete = "delete"
)

// NamespacePlaceholder in a Request's Path is replaced by the probe's
// scratch namespace.
const NamespacePlaceholder = "{namespace}"

// Request is one kind of request of the probe's mix. Get and list send a
// GET to Path (an API path, optionally with a query, where
// NamespacePlaceholder names the scratch namespace). Create, patch and
// delete act on the probe's scratch ConfigMap and take no Path: the probe
// never writes anything else.
type Request struct {
	Verb string `json:"verb"`
	Path string `json:"path,omitempty"`
}

// DefaultRequests is the mix used when Options.Requests is empty: reads
// served from the watch cache and from etcd, lists, and a write cycle.
func DefaultRequests() []Request {
	return []Request{
		{Verb: VerbGet, Path: "/api/v1/namespaces/" + NamespacePlaceholder},
		{Verb: VerbList, Path: "/api/v1/namespaces/" + NamespacePlaceholder + "/configmaps"},
		{Verb: VerbCreate},
		{Verb: VerbGet, Path: "/api/v1/namespaces/" + NamespacePlaceholder + "/configmaps/kube-root-ca.crt"},
		{Verb: VerbPatch},
		{Verb: VerbList, Path: "/api/v1/namespaces?limit=50&resourceVersion=0"},
		{Verb: VerbList, Path: "/api/v1/pods?limit=50"},
		{Verb: VerbDelete},
	}
}

// ValidateRequests checks a mix.
func ValidateRequests(reqs []Request) error {
	for i, r := range reqs {
		switch r.Verb {
		case VerbGet, VerbList:
			if !strings.HasPrefix(r.Path, "/") {
				return fmt.Errorf("request %d (%s): path %q must be an absolute API path such as /api/v1/namespaces", i+1, r.Verb, r.Path)
			}
		case VerbCreate, VerbPatch, VerbDelete:
			if r.Path != "" {
				return fmt.Errorf("request %d (%s): a write acts on the probe's scratch ConfigMap only and takes no path (got %q)", i+1, r.Verb, r.Path)
			}
		default:
			return fmt.Errorf("request %d: unknown verb %q (want get, list, create, patch or delete)", i+1, r.Verb)
		}
	}
	return nil
}

// ReadRequests reads a JSON list of requests, as in
// [{"verb":"list","path":"/api/v1/pods"},{"verb":"create"}].
func ReadRequests(r io.Reader) ([]Request, error) {
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	var reqs []Request
	if err := dec.Decode(&reqs); err != nil {
		return nil, fmt.Errorf("read probe requests: %w", err)
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("read probe requests: the list is empty")
	}
	if err := ValidateRequests(reqs); err != nil {
		return nil, fmt.Errorf("read probe requests: %w", err)
	}
	return reqs, nil
}
