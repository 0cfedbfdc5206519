package redact

import (
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
)

// This file holds the structured kinds: values whose shape is known, so
// that only their identifying parts are replaced.

// url redacts a URL ("https://host:port/path?query#fragment") or a
// request target ("/path?query"). Userinfo is masked; the host is
// pseudonymised (IP addresses as ip, names as host); a Kubernetes API path
// keeps its prefix, group, version, resource and subresource; the query
// keeps its parameter names and harmless values (watch=true, limit=500).
func (j *job) url(s string) string {
	if s == "" {
		return s
	}
	var b strings.Builder
	rest := s
	if i := strings.Index(s, "://"); i > 0 && validScheme(s[:i]) {
		b.WriteString(s[:i+3])
		rest = s[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		auth := rest[:end]
		rest = rest[end:]
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			j.count(kindSecret)
			b.WriteString(Masked + "@")
			auth = auth[at+1:]
		}
		b.WriteString(j.hostPort(auth))
	} else if !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "?") {
		return j.scrub(s)
	}
	path, frag, hasFrag := strings.Cut(rest, "#")
	path, query, hasQuery := strings.Cut(path, "?")
	b.WriteString(j.path(path))
	if hasQuery {
		b.WriteByte('?')
		b.WriteString(j.query(query))
	}
	if hasFrag {
		b.WriteByte('#')
		b.WriteString(j.scrub(frag))
	}
	return b.String()
}

func validScheme(s string) bool {
	if s == "" || len(s) > 16 || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// path redacts a URL path.
func (j *job) path(p string) string {
	switch {
	case p == "" || p == "/":
		return p
	case p == "/api" || p == "/apis" || strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/apis/"):
		return j.apiPath(p)
	}
	if m := reRegistryPath.FindStringSubmatchIndex(p); m != nil {
		// An image registry: /v2/<repository>/manifests/<tag>.
		return p[:m[2]] + j.pseudo(KindImage, p[m[2]:m[3]]) + "/" + p[m[4]:m[5]] + j.scrub(p[m[5]:])
	}
	return j.scrub(p)
}

var reRegistryPath = regexp.MustCompile(`^/v2/(.+)/(manifests|blobs|tags|referrers)`)

// namespaceSubresources are the subresources of a namespace object, as
// the kube-apiserver's request info parser knows them.
var namespaceSubresources = map[string]bool{"status": true, "finalize": true}

// apiPath redacts a Kubernetes API path the way the kube-apiserver parses
// it: /api/<version>/... or /apis/<group>/<version>/..., an optional
// legacy "watch" segment, "namespaces/<ns>", then resource, name,
// subresource. The namespace and name are pseudonymised, the rest kept;
// segments past the subresource (a proxy path) are scrubbed.
func (j *job) apiPath(p string) string {
	segs := strings.Split(p[1:], "/")
	pos := 2 // api/<version>
	if segs[0] == "apis" {
		pos = 3 // apis/<group>/<version>
	}
	if pos >= len(segs) {
		for i := range segs {
			segs[i] = j.structural(segs[i])
		}
		return "/" + strings.Join(segs, "/")
	}
	out := append([]string(nil), segs...)
	for i := range out {
		out[i] = j.structural(out[i]) // prefix, group, version, resource: kept unless they hold a value pattern
	}
	if segs[pos] == "watch" {
		pos++
	}
	if pos+1 < len(segs) && segs[pos] == "namespaces" {
		out[pos+1] = j.pseudo(KindNamespace, segs[pos+1])
		if pos+2 < len(segs) && !namespaceSubresources[segs[pos+2]] {
			pos += 2
		} else {
			for k := pos + 2; k < len(segs); k++ {
				out[k] = j.subresource(segs[k], k == pos+2)
			}
			return "/" + strings.Join(out, "/")
		}
	}
	// resource, name, subresource, anything else.
	if pos+1 < len(segs) {
		out[pos+1] = j.pseudoGuess(nameKind(segs[pos]), segs[pos+1])
	}
	for k := pos + 2; k < len(segs); k++ {
		out[k] = j.subresource(segs[k], k == pos+2)
	}
	return "/" + strings.Join(out, "/")
}

var reLowerWord = regexp.MustCompile(`^[a-z]+$`)

// subresource keeps a subresource ("status", "log") and scrubs what
// follows it.
func (j *job) subresource(seg string, first bool) string {
	if first && reLowerWord.MatchString(seg) && !j.e.pol.keepValue(seg) {
		return seg
	}
	return j.scrub(seg)
}

// structural returns a segment that is structure (an API prefix, group,
// version or resource), unless it holds a value pattern: then it is
// scrubbed.
func (j *job) structural(seg string) string {
	if seg == "" || !j.leaks(seg) {
		return seg
	}
	return j.scrub(seg)
}

// nameKind is the kind of an object name of a resource.
func nameKind(resource string) string {
	switch resource {
	case "namespaces":
		return KindNamespace
	case "nodes", "minions", "csinodes":
		return KindNode
	case "pods":
		return KindPod
	}
	return KindName
}

// safeParams are query parameters whose values are kept when they look
// harmless (short, no address or id in them).
var safeParams = map[string]bool{
	"watch": true, "allowWatchBookmarks": true, "resourceVersion": true, "resourceVersionMatch": true,
	"timeout": true, "timeoutSeconds": true, "limit": true, "sendInitialEvents": true,
	"propagationPolicy": true, "gracePeriodSeconds": true, "dryRun": true, "pretty": true,
	"orphanDependents": true, "force": true, "fieldValidation": true, "follow": true, "previous": true,
	"tailLines": true, "limitBytes": true, "timestamps": true, "sinceSeconds": true, "sinceTime": true,
	"stdin": true, "stdout": true, "stderr": true, "tty": true, "includeObject": true, "as": true,
	"shouldCalculateStatus": true, "export": true, "exact": true,
	"fieldManager": true, // names the client program, like a user agent's product token
}

var (
	reSafeValue    = regexp.MustCompile(`^[A-Za-z0-9._:%+-]{0,64}$`)
	reTrivialValue = regexp.MustCompile(`^(true|false|True|False|[0-9]+(\.[0-9]+)?([a-z]{1,2}([0-9]+[a-z]{1,2})*)?)$`)
	reParamName    = regexp.MustCompile(`^[A-Za-z0-9_.\-\[\]]{1,64}$`)
	reSecretParam  = regexp.MustCompile(`(?i)(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|signature|sig|credential|auth)`)
)

// query redacts a URL query: parameter names kept, values of safeParams
// kept when harmless, selectors redacted value by value, booleans and
// numbers kept, every other value pseudonymised.
func (j *job) query(q string) string {
	if q == "" {
		return q
	}
	parts := strings.Split(q, "&")
	for i, part := range parts {
		k, v, hasEq := strings.Cut(part, "=")
		if !reParamName.MatchString(k) || j.leaks(k) {
			k = j.pseudo(KindValue, k)
		}
		if !hasEq {
			parts[i] = k
			continue
		}
		switch {
		case v == "":
		case reSecretParam.MatchString(k):
			if v != Masked {
				j.count(kindSecret)
				v = Masked
			}
		case k == "labelSelector" || k == "fieldSelector":
			dec, err := url.QueryUnescape(v)
			if err != nil {
				v = j.pseudo(KindValue, v)
				break
			}
			if out := j.selector(dec, k == "fieldSelector"); out != dec {
				v = url.QueryEscape(out)
			}
		case k == "container" || k == "containerName":
			v = j.pseudoGuess(KindName, v)
		case safeParams[k] && reSafeValue.MatchString(v) && !j.leaks(v):
		case reTrivialValue.MatchString(v):
		default:
			v = j.pseudoGuess(KindValue, v)
		}
		parts[i] = k + "=" + v
	}
	return strings.Join(parts, "&")
}

var reSetReq = regexp.MustCompile(`^(\s*!?[^\s!=()]+\s+(?:in|notin)\s*\()([^)]*)(\)\s*)$`)

// fieldKinds are the kinds of field selector values.
var fieldKinds = map[string]string{
	"metadata.name": KindName, "metadata.namespace": KindNamespace, "metadata.uid": KindUID,
	"spec.nodeName": KindNode, "involvedObject.name": KindName, "involvedObject.namespace": KindNamespace,
	"involvedObject.uid": KindUID, "spec.serviceAccountName": KindName, "source": KindName,
	"reportingComponent": KindName,
}

// selector redacts a label or field selector: keys and operators kept,
// values pseudonymised.
func (j *job) selector(sel string, field bool) string {
	reqs := splitTopLevel(sel)
	for i, r := range reqs {
		if m := reSetReq.FindStringSubmatch(r); m != nil {
			vals := strings.Split(m[2], ",")
			for k, v := range vals {
				if t := strings.TrimSpace(v); !reTrivialValue.MatchString(t) {
					vals[k] = strings.Replace(v, t, j.pseudoGuess(KindValue, t), 1)
				}
			}
			reqs[i] = m[1] + strings.Join(vals, ",") + m[3]
			continue
		}
		op := strings.Index(r, "=")
		if op < 0 {
			continue // existence: "key" or "!key"
		}
		start := op
		if op > 0 && (r[op-1] == '!' || r[op-1] == '=') {
			start = op - 1
		}
		end := op + 1
		if end < len(r) && r[end] == '=' {
			end++
		}
		prefix := r[:start]
		key := strings.TrimSpace(prefix)
		if j.leaks(prefix) {
			prefix = j.scrub(prefix)
		}
		val := r[end:]
		t := strings.TrimSpace(val)
		kind := KindValue
		if field {
			if k, ok := fieldKinds[key]; ok {
				kind = k
			}
		}
		if kind != KindValue || !reTrivialValue.MatchString(t) { // a number or a boolean names nothing
			val = strings.Replace(val, t, j.pseudoGuess(kind, t), 1)
		}
		reqs[i] = prefix + r[start:end] + val
	}
	return strings.Join(reqs, ",")
}

// splitTopLevel splits a selector on commas outside parentheses.
func splitTopLevel(s string) []string {
	var out []string
	depth, at := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				out = append(out, s[at:i])
				at = i + 1
			}
		}
	}
	return append(out, s[at:])
}

// clusterScoped are the built-in resources without a namespace.
var clusterScoped = map[string]bool{
	"namespaces": true, "nodes": true, "minions": true, "persistentvolumes": true, "clusterroles": true,
	"clusterrolebindings": true, "customresourcedefinitions": true, "apiservices": true,
	"priorityclasses": true, "storageclasses": true, "csinodes": true, "csidrivers": true,
	"volumeattachments": true, "certificatesigningrequests": true, "flowschemas": true,
	"prioritylevelconfigurations": true, "validatingwebhookconfigurations": true,
	"mutatingwebhookconfigurations": true, "validatingadmissionpolicies": true,
	"validatingadmissionpolicybindings": true, "mutatingadmissionpolicies": true,
	"mutatingadmissionpolicybindings": true, "ipaddresses": true, "servicecidrs": true,
	"runtimeclasses": true, "ingressclasses": true, "podsecuritypolicy": true, "deviceclasses": true,
	"resourceslices": true, "masterleases": true, "ranges": true, "componentstatuses": true,
	"clustertrustbundles": true, "storageversions": true, "storageversionmigrations": true,
	"volumeattributesclasses": true,
}

// etcdKey redacts a kube-apiserver storage key: "/registry/configmaps/ns/name"
// or, as the apiserver's storage spans show it, "/configmaps/ns/name". The
// resource part (with its API group, and "services/specs") is kept, so the
// analysis groups etcd calls by it as before; namespace and name are
// pseudonymised.
func (j *job) etcdKey(k string) string {
	pre, rest := "", k
	if strings.HasPrefix(rest, "/registry/") {
		pre, rest = "/registry", rest[len("/registry"):]
	}
	if !strings.HasPrefix(rest, "/") {
		return j.scrub(k) // not a key; k does not start with "/registry/"
	}
	if len(rest) == 1 {
		return k // "/" or "/registry/": no names
	}
	segs := strings.Split(rest[1:], "/")
	n := 1
	if len(segs) > 1 && (strings.Contains(segs[0], ".") || segs[0] == "services" && (segs[1] == "specs" || segs[1] == "endpoints")) {
		n = 2
	}
	resource := segs[n-1]
	names := segs[n:]
	out := append([]string(nil), segs[:n]...)
	for i := range out {
		out[i] = j.structural(out[i])
	}
	switch {
	case len(names) == 0:
	case clusterScoped[resource]:
		out = append(out, j.pseudoGuess(nameKind(resource), names[0]))
		names = names[1:]
	case len(names) == 1:
		kind := KindNamespace
		if !j.e.tok.isNamespace(names[0]) && strings.Contains(segs[0], ".") {
			kind = KindName // a custom resource: cluster-scoped, as far as we know
		}
		out = append(out, j.pseudo(kind, names[0]))
		names = nil
	default:
		out = append(out, j.pseudo(KindNamespace, names[0]), j.pseudoGuess(nameKind(resource), names[1]))
		names = names[2:]
	}
	for _, s := range names {
		out = append(out, j.scrub(s))
	}
	return pre + "/" + strings.Join(out, "/")
}

// address redacts host[:port], IP[:port], a URL or a socket path.
func (j *job) address(s string) string {
	switch {
	case s == "":
		return s
	case strings.Contains(s, "://"):
		return j.url(s)
	case s[0] == '/' || s[0] == '@':
		return j.scrub(s)
	}
	return j.hostPort(s)
}

// hostPort redacts the host of host[:port]; the port is kept.
func (j *job) hostPort(hp string) string {
	if hp == "" {
		return hp
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil || !allDigits(port) {
		return j.host(hp)
	}
	if strings.HasPrefix(hp, "[") {
		return "[" + j.host(host) + "]:" + port
	}
	return j.host(host) + ":" + port
}

// host redacts a host name or IP address.
func (j *job) host(h string) string {
	if h == "" || j.e.pol.keepValue(h) {
		return h
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		return "[" + j.host(h[1:len(h)-1]) + "]"
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if j.e.pol.keepAddr(a) {
			return h
		}
		return j.pseudo(KindIP, h)
	}
	if strings.ContainsAny(h, " \t/\\\"'") {
		return j.scrub(h)
	}
	return j.pseudo(KindHost, h)
}

var (
	reUAComment = regexp.MustCompile(`\(([^()]*)\)`)
	reHostLike  = regexp.MustCompile(`^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$`)
	reProduct   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]*/[A-Za-z0-9.$_+-]*$`)
)

// userAgent redacts a user agent: product tokens ("kubelet/v1.37.2",
// "kubernetes/$Format") and comment items such as "linux/amd64" stay;
// host names in comments ("(node-1.example.com; linux)") become host
// tokens; everything else is scrubbed as free text.
func (j *job) userAgent(s string) string {
	words := strings.Split(s, " ")
	inComment := 0
	for i, w := range words {
		opens, closes := strings.Count(w, "("), strings.Count(w, ")")
		switch {
		case inComment == 0 && opens == 0 && reProduct.MatchString(w) && !reHostLike.MatchString(w[:strings.IndexByte(w, '/')]):
			// A product token: kept, but for value patterns in it.
			words[i] = j.scrubText(w, false)
		default:
			words[i] = j.userAgentWord(w)
		}
		inComment += opens - closes
		if inComment < 0 {
			inComment = 0
		}
	}
	return strings.Join(words, " ")
}

func (j *job) userAgentWord(w string) string {
	core := strings.Trim(w, "();,")
	if core == "" {
		return w
	}
	if reHostLike.MatchString(core) && !j.e.tok.isIssued(core) {
		return strings.Replace(w, core, j.host(core), 1)
	}
	if strings.Contains(core, "/") && reProduct.MatchString(core) {
		return strings.Replace(w, core, j.scrubText(core, false), 1) // "linux/amd64"
	}
	return j.scrub(w)
}

// podRef redacts "<namespace>/<pod>".
func (j *job) podRef(s string) string {
	if ns, pod, ok := strings.Cut(s, "/"); ok {
		return j.pseudo(KindNamespace, ns) + "/" + j.pseudo(KindPod, pod)
	}
	return j.pseudo(KindPod, s)
}

// criName redacts a CRI sandbox name "<pod>_<namespace>_<uid>_<attempt>"
// or a container name "k8s_<container>_<pod>_<namespace>_<uid>_<attempt>".
func (j *job) criName(s string) string {
	parts := strings.Split(s, "_")
	switch {
	case len(parts) == 4 && reUUIDExact.MatchString(parts[2]):
		parts[0] = j.pseudo(KindPod, parts[0])
		parts[1] = j.pseudo(KindNamespace, parts[1])
		parts[2] = j.pseudo(KindUID, parts[2])
	case len(parts) == 6 && parts[0] == "k8s":
		parts[1] = j.pseudo(KindName, parts[1])
		parts[2] = j.pseudo(KindPod, parts[2])
		parts[3] = j.pseudo(KindNamespace, parts[3])
		parts[4] = j.pseudoGuess(KindUID, parts[4])
	default:
		for i, p := range parts {
			if !allDigits(p) {
				parts[i] = j.pseudoGuess(KindName, p)
			}
		}
		return strings.Join(parts, "_")
	}
	if !allDigits(parts[len(parts)-1]) {
		parts[len(parts)-1] = j.pseudo(KindName, parts[len(parts)-1])
	}
	return strings.Join(parts, "_")
}

var reEmailExact = regexp.MustCompile(`^` + reEmail.String() + `$`)

// user redacts a user name. Service accounts and nodes keep their shape:
// "system:serviceaccount:ns-…:name-…", "system:node:node-…".
func (j *job) user(s string) string {
	if s == "" || j.e.pol.keepValue(s) || j.e.tok.isIssued(s) {
		return s
	}
	if rest, ok := strings.CutPrefix(s, "system:serviceaccount:"); ok {
		if ns, name, ok := strings.Cut(rest, ":"); ok {
			return "system:serviceaccount:" + j.pseudo(KindNamespace, ns) + ":" + j.pseudo(KindName, name)
		}
	}
	if ns, ok := strings.CutPrefix(s, "system:serviceaccounts:"); ok {
		return "system:serviceaccounts:" + j.pseudo(KindNamespace, ns)
	}
	if node, ok := strings.CutPrefix(s, "system:node:"); ok {
		return "system:node:" + j.pseudo(KindNode, node)
	}
	if reEmailExact.MatchString(s) {
		return j.pseudo(KindEmail, s)
	}
	return j.pseudo(KindUser, s)
}

// image redacts an image reference. Images of a kept registry (Docker Hub
// when the reference names none) stay whole; others get their registry
// and repository pseudonymised, tag and digest kept.
func (j *job) image(s string) string {
	if s == "" || j.e.pol.keepValue(s) || strings.HasPrefix(s, "sha256:") {
		return s
	}
	ref, digest, hasDigest := strings.Cut(s, "@")
	slash := strings.LastIndexByte(ref, '/')
	name, tag := ref, ""
	if c := strings.LastIndexByte(ref, ':'); c > slash {
		name, tag = ref[:c], ref[c:]
	}
	comps := strings.Split(name, "/")
	registry := "docker.io"
	if len(comps) > 1 && (strings.ContainsAny(comps[0], ".:") || comps[0] == "localhost") {
		registry, comps = comps[0], comps[1:]
	}
	host := strings.ToLower(registry)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if j.e.pol.registries[strings.ToLower(registry)] || j.e.pol.registries[host] {
		return s
	}
	reg := j.pseudo(kindRegistry, registry)
	if h, port, err := net.SplitHostPort(registry); err == nil && h != "" {
		reg = j.pseudo(kindRegistry, h) + ":" + port
	}
	out := reg + "/" + j.pseudo(KindImage, strings.Join(comps, "/")) + j.structural(tag)
	if hasDigest {
		out += "@" + j.structural(digest)
	}
	return out
}
