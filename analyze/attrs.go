package analyze

import (
	"bytes"
	"strings"
)

// Attribute keys the decoder keeps. Each spelling has its own id so the
// waterfall shows the attribute under the name the component used; the
// helpers below read both semantic-convention generations.
const (
	attrNone uint8 = iota
	// HTTP, new and old semantic conventions.
	attrHTTPRequestMethod  // http.request.method
	attrHTTPMethod         // http.method
	attrHTTPTarget         // http.target (kube-apiserver adds it)
	attrURLPath            // url.path
	attrURLFull            // url.full
	attrHTTPURL            // http.url
	attrHTTPResponseStatus // http.response.status_code
	attrHTTPStatusCode     // http.status_code
	attrUserAgentOriginal  // user_agent.original
	attrHTTPUserAgent      // http.user_agent
	attrErrorType          // error.type
	// RPC, new and old.
	attrRPCSystemName     // rpc.system.name
	attrRPCSystem         // rpc.system
	attrRPCService        // rpc.service
	attrRPCMethod         // rpc.method
	attrRPCResponseStatus // rpc.response.status_code
	attrRPCGRPCStatus     // rpc.grpc.status_code
	// kube-apiserver handler and storage spans.
	attrVerb        // verb
	attrResource    // resource
	attrSubresource // subresource
	attrKey         // key
	attrNamespace   // namespace
	attrAPIGroup    // api-group
	attrUserAgentK8 // user-agent
	// kubelet pod spans.
	attrK8sPodName    // k8s.pod.name
	attrK8sNamespace  // k8s.namespace.name
	attrK8sUpdateType // k8s.pod.update_type
	// attrWatchMark is synthetic: set by the decoder when a URL attribute
	// asks for a watch (the value may be cut to maxValueLen before the
	// query parameter). Not shown.
	attrWatchMark
	attrCount
)

var attrNames = [attrCount]string{
	attrHTTPRequestMethod:  "http.request.method",
	attrHTTPMethod:         "http.method",
	attrHTTPTarget:         "http.target",
	attrURLPath:            "url.path",
	attrURLFull:            "url.full",
	attrHTTPURL:            "http.url",
	attrHTTPResponseStatus: "http.response.status_code",
	attrHTTPStatusCode:     "http.status_code",
	attrUserAgentOriginal:  "user_agent.original",
	attrHTTPUserAgent:      "http.user_agent",
	attrErrorType:          "error.type",
	attrRPCSystemName:      "rpc.system.name",
	attrRPCSystem:          "rpc.system",
	attrRPCService:         "rpc.service",
	attrRPCMethod:          "rpc.method",
	attrRPCResponseStatus:  "rpc.response.status_code",
	attrRPCGRPCStatus:      "rpc.grpc.status_code",
	attrVerb:               "verb",
	attrResource:           "resource",
	attrSubresource:        "subresource",
	attrKey:                "key",
	attrNamespace:          "namespace",
	attrAPIGroup:           "api-group",
	attrUserAgentK8:        "user-agent",
	attrK8sPodName:         "k8s.pod.name",
	attrK8sNamespace:       "k8s.namespace.name",
	attrK8sUpdateType:      "k8s.pod.update_type",
}

// spanAttrKey maps an attribute key to its id, attrNone when not kept.
// The switch on length first keeps the common miss cheap.
func spanAttrKey(k []byte) uint8 {
	switch len(k) {
	case 3:
		if string(k) == "key" {
			return attrKey
		}
	case 4:
		if string(k) == "verb" {
			return attrVerb
		}
	case 8:
		switch string(k) {
		case "url.path":
			return attrURLPath
		case "url.full":
			return attrURLFull
		case "http.url":
			return attrHTTPURL
		case "resource":
			return attrResource
		}
	case 9:
		switch string(k) {
		case "namespace":
			return attrNamespace
		case "api-group":
			return attrAPIGroup
		}
	case 10:
		switch string(k) {
		case "error.type":
			return attrErrorType
		case "rpc.method":
			return attrRPCMethod
		case "rpc.system":
			return attrRPCSystem
		case "user-agent":
			return attrUserAgentK8
		}
	case 11:
		switch string(k) {
		case "http.method":
			return attrHTTPMethod
		case "http.target":
			return attrHTTPTarget
		case "rpc.service":
			return attrRPCService
		case "subresource":
			return attrSubresource
		}
	case 12:
		if string(k) == "k8s.pod.name" {
			return attrK8sPodName
		}
	case 15:
		switch string(k) {
		case "rpc.system.name":
			return attrRPCSystemName
		case "http.user_agent":
			return attrHTTPUserAgent
		}
	case 16:
		if string(k) == "http.status_code" {
			return attrHTTPStatusCode
		}
	case 18:
		if string(k) == "k8s.namespace.name" {
			return attrK8sNamespace
		}
	case 19:
		switch string(k) {
		case "http.request.method":
			return attrHTTPRequestMethod
		case "user_agent.original":
			return attrUserAgentOriginal
		case "k8s.pod.update_type":
			return attrK8sUpdateType
		}
	case 20:
		if string(k) == "rpc.grpc.status_code" {
			return attrRPCGRPCStatus
		}
	case 24:
		if string(k) == "rpc.response.status_code" {
			return attrRPCResponseStatus
		}
	case 25:
		if string(k) == "http.response.status_code" {
			return attrHTTPResponseStatus
		}
	}
	return attrNone
}

// Resource attribute keys.
const (
	resNone = iota
	resServiceName
	resHostName
	resInstanceID
)

func resourceAttrKey(k []byte) int {
	switch string(k) {
	case "service.name":
		return resServiceName
	case "host.name":
		return resHostName
	case "service.instance.id":
		return resInstanceID
	}
	return resNone
}

// attrInfo holds facts derived once per distinct attribute set.
type attrInfo struct {
	watch       bool   // the span is a watch request (query watch=true, verb WATCH)
	watchDetail string // what made it one
	verb        int32  // kube-apiserver request verb (string id)
	resource    int32  // resource, with "/subresource" when set (string id)
}

func (s *store) deriveAttrInfo(kvs []kv) attrInfo {
	var ai attrInfo
	for _, a := range kvs {
		v := s.strs[a.val]
		switch a.key {
		case attrVerb:
			if strings.EqualFold(v, "WATCH") || strings.EqualFold(v, "WATCHLIST") {
				ai.watch, ai.watchDetail = true, "verb="+v
			}
		case attrWatchMark:
			ai.watch = true
		}
	}
	if v := s.attr0(kvs, attrVerb); v != "" {
		ai.verb = s.internString(v)
		res := s.attr0(kvs, attrResource)
		if sub := s.attr0(kvs, attrSubresource); sub != "" {
			res += "/" + sub
		}
		ai.resource = s.internString(res)
	}
	if ai.watch && ai.watchDetail == "" {
		for _, a := range kvs {
			switch a.key {
			case attrHTTPTarget, attrURLFull, attrHTTPURL:
				ai.watchDetail = s.strs[a.val]
			}
		}
	}
	return ai
}

// isWatchQuery reports whether a URL or request target asks for a watch:
// a query parameter watch=true or watch=1.
func isWatchQuery(u []byte) bool {
	q := bytes.IndexByte(u, '?')
	if q < 0 {
		return false
	}
	for p := range bytes.SplitSeq(u[q+1:], []byte("&")) {
		switch string(p) {
		case "watch=true", "watch=1", "watch=True":
			return true
		}
	}
	return false
}

// longLivedName reports whether a span name is a long-lived RPC stream:
// etcd watches and lease keep-alives, any gRPC ".../Watch" method.
func longLivedName(name string) (reason string, ok bool) {
	switch {
	case strings.HasSuffix(name, "/Watch"):
		return "watch", true
	case strings.HasSuffix(name, "/LeaseKeepAlive"):
		return "stream", true
	}
	return "", false
}

func (s *store) attr0(kvs []kv, k uint8) string {
	for _, a := range kvs {
		if a.key == k {
			return s.strs[a.val]
		}
	}
	return ""
}
