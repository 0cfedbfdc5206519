package redact

import (
	"net/netip"
	"regexp"
	"sort"
	"strings"
)

// Masked is what a secret becomes.
const Masked = "REDACTED"

// This file is the free-text scrubber: value patterns found anywhere in a
// string, then the names already pseudonymised elsewhere.

var (
	reBearer = regexp.MustCompile(`(?i)\b(bearer|basic)\s+([A-Za-z0-9\-._~+/]{8,}=*)`)
	reJWT    = regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
	reSecret = regexp.MustCompile(`(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret|authorization)(\\?"?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s&,;"'}]+)`)
	reURL    = regexp.MustCompile(`\b[A-Za-z][A-Za-z0-9+.-]{0,15}://[^\s"'<>\\` + "`" + `]*`)
	reEmail  = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)
	reAPI    = regexp.MustCompile(`/(apis?|registry)/[^\s"'\\<>` + "`" + `]*`)
	reSA     = regexp.MustCompile(`system:(serviceaccount:[a-z0-9.-]+:[a-z0-9.-]+|node:[A-Za-z0-9.-]+)`)
	rePodRef = regexp.MustCompile(`([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)_([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)\(([0-9a-fA-F-]{36})\)`)
	reField  = regexp.MustCompile(`\b(name|namespace|ns|uid|pod|podName|pod_name|node|nodeName|node_name|user|username|host|hostname|object|peer|addr|address|client|server)(\\?"?\s*[:=]\s*)(\\?"([^"\\]*)\\?"|'([^']*)'|([^\s"',;}\])]+))`)
	reImage  = regexp.MustCompile(`(?i)\b(?:image|pullimage|image ref|imageref)(?:\s*[:=]\s*|\s+)\\?"?([A-Za-z0-9][A-Za-z0-9._:/@+-]*[A-Za-z0-9])`)
	reQuoted = regexp.MustCompile(`\b([A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]) \\?"([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)\\?"`)
	reHome   = regexp.MustCompile(`/(home|Users)/([^/\s"'\\]+)`)
	reUUID   = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	reHex    = regexp.MustCompile(`[0-9a-fA-F]{48,}`)
)

// fieldKind maps the field names reField knows to a kind.
var fieldKind = map[string]string{
	"name": KindName, "namespace": KindNamespace, "ns": KindNamespace, "uid": KindUID, "pod": KindPod,
	"podName": KindPod, "pod_name": KindPod, "node": KindNode, "nodeName": KindNode, "node_name": KindNode,
	"user": KindUser, "username": KindUser, "host": KindAddress, "hostname": KindHost, "object": KindName,
	"peer": KindAddress, "addr": KindAddress, "address": KindAddress, "client": KindAddress,
	"server": KindAddress,
}

// repl is one replacement of s[start:end].
type repl struct {
	start, end int
	with       string
}

// replacer collects non-overlapping replacements, first come first kept.
type replacer struct {
	s  string
	rs []repl
}

func (r *replacer) free(start, end int) bool {
	for _, x := range r.rs {
		if start < x.end && x.start < end {
			return false
		}
	}
	return true
}

func (r *replacer) add(start, end int, with string) {
	if start >= end || !r.free(start, end) {
		return
	}
	r.rs = append(r.rs, repl{start, end, with})
}

func (r *replacer) String() string {
	if len(r.rs) == 0 {
		return r.s
	}
	sort.Slice(r.rs, func(i, j int) bool { return r.rs[i].start < r.rs[j].start })
	var b strings.Builder
	b.Grow(len(r.s) + 16*len(r.rs))
	at := 0
	for _, x := range r.rs {
		b.WriteString(r.s[at:x.start])
		b.WriteString(x.with)
		at = x.end
	}
	b.WriteString(r.s[at:])
	return b.String()
}

// gaps calls fn with each stretch of s no replacement covers.
func (r *replacer) gaps(fn func(start, end int)) {
	sort.Slice(r.rs, func(i, j int) bool { return r.rs[i].start < r.rs[j].start })
	at := 0
	for _, x := range r.rs {
		if x.start > at {
			fn(at, x.start)
		}
		at = x.end
	}
	if at < len(r.s) {
		fn(at, len(r.s))
	}
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// bounded reports whether s[start:end] is not glued to letters or digits.
func bounded(s string, start, end int) bool {
	return (start == 0 || !isAlnum(s[start-1])) && (end == len(s) || !isAlnum(s[end]))
}

// scrub replaces the value patterns and known names in free text.
func (j *job) scrub(s string) string { return j.scrubText(s, true) }

// scrubText scrubs s; dict says whether names already pseudonymised
// elsewhere are looked for too (not in span names: a namespace called
// "audit" must not rename the "audit" span).
func (j *job) scrubText(s string, dict bool) string {
	if s == "" || j.learn {
		return s
	}
	if out, ok := j.cached(s, dict); ok {
		return out
	}
	if j.depth >= maxDepth {
		j.count(kindSecret)
		return Masked
	}
	j.depth++
	defer func() { j.depth-- }()
	start := j.mark()
	out := j.scrubOnce(s, dict)
	// At the top only: replacements that formed new matches with their
	// neighbours get another pass; text that keeps doing so is masked.
	for round := 0; j.depth == 1 && j.leaks(out); round++ {
		if round == 2 {
			j.count(kindSecret)
			out = Masked
			break
		}
		out = j.scrubOnce(out, dict)
	}
	if j.depth == 1 {
		j.remember(s, dict, out, start) // nested results may still hold what the top pass fixes
	}
	return out
}

func (j *job) scrubOnce(s string, dict bool) string {
	r := &replacer{s: s}
	pol := j.e.pol
	for _, p := range pol.patterns {
		for _, m := range p.re.FindAllStringSubmatchIndex(s, -1) {
			a, b := m[0], m[1]
			if len(m) >= 4 && m[2] >= 0 {
				a, b = m[2], m[3]
			}
			if a == b || j.e.tok.isIssued(s[a:b]) {
				continue
			}
			if !r.free(a, b) {
				continue
			}
			if p.kind == KindMask {
				j.count(kindSecret)
				r.add(a, b, Masked)
			} else {
				r.add(a, b, j.pseudo(p.kind, s[a:b]))
			}
		}
	}
	// URLs first: their userinfo and secret query values are masked by url.
	for _, m := range reURL.FindAllStringIndex(s, -1) {
		a, b := m[0], trimURLEnd(s, m[0], m[1])
		if r.free(a, b) {
			if out := j.url(s[a:b]); out != s[a:b] {
				r.add(a, b, out)
			} else {
				r.add(a, b, s[a:b]) // claimed: nothing inside it is a separate match
			}
		}
	}
	// Secrets.
	for _, m := range reBearer.FindAllStringSubmatchIndex(s, -1) {
		if s[m[4]:m[5]] == Masked {
			continue
		}
		if r.free(m[4], m[5]) {
			j.count(kindSecret)
			r.add(m[4], m[5], Masked)
		}
	}
	for _, m := range reJWT.FindAllStringIndex(s, -1) {
		if r.free(m[0], m[1]) {
			j.count(kindSecret)
			r.add(m[0], m[1], Masked)
		}
	}
	for _, m := range reSecret.FindAllStringSubmatchIndex(s, -1) {
		v := strings.Trim(s[m[6]:m[7]], `"'`)
		if v == Masked || v == "" || strings.EqualFold(v, "bearer") || strings.EqualFold(v, "basic") {
			continue // "Authorization: Bearer …": the token after it is masked above
		}
		if r.free(m[6], m[7]) {
			j.count(kindSecret)
			r.add(m[6], m[7], Masked)
		}
	}
	// E-mail addresses, API paths and storage keys.
	for _, m := range reEmail.FindAllStringIndex(s, -1) {
		if r.free(m[0], m[1]) && !j.e.tok.isIssued(s[m[0]:m[1]]) {
			r.add(m[0], m[1], j.pseudo(KindEmail, s[m[0]:m[1]]))
		}
	}
	for _, m := range reAPI.FindAllStringSubmatchIndex(s, -1) {
		a, b := m[0], trimURLEnd(s, m[0], m[1])
		if a > 0 && isAlnum(s[a-1]) || !r.free(a, b) {
			continue
		}
		var out string
		if s[m[2]:m[3]] == "registry" {
			out = j.etcdKey(s[a:b])
		} else {
			out = j.url(s[a:b])
		}
		r.add(a, b, out)
	}
	// Kubernetes names in their usual textual shapes.
	for _, m := range reSA.FindAllStringSubmatchIndex(s, -1) {
		if bounded(s, m[0], m[1]) && r.free(m[0], m[1]) {
			r.add(m[0], m[1], j.user(s[m[0]:m[1]]))
		}
	}
	for _, m := range rePodRef.FindAllStringSubmatchIndex(s, -1) {
		if !r.free(m[0], m[1]) {
			continue
		}
		r.add(m[0], m[1], j.pseudo(KindPod, s[m[2]:m[3]])+"_"+j.pseudo(KindNamespace, s[m[4]:m[5]])+
			"("+j.pseudo(KindUID, s[m[6]:m[7]])+")")
	}
	for _, m := range reField.FindAllStringSubmatchIndex(s, -1) {
		a, b := m[8], m[9] // "value"
		if a < 0 {
			a, b = m[10], m[11] // 'value'
		}
		if a < 0 {
			a, b = m[12], m[13] // value
		}
		if a < 0 || a == b || !r.free(a, b) {
			continue
		}
		v := s[a:b]
		if j.e.tok.isIssued(v) || v == Masked {
			r.add(a, b, v)
			continue
		}
		r.add(a, b, j.apply(fieldKind[s[m[2]:m[3]]], v))
	}
	for _, m := range reImage.FindAllStringSubmatchIndex(s, -1) {
		a, b := m[2], m[3]
		if r.free(a, b) && strings.ContainsAny(s[a:b], "/:.") {
			r.add(a, b, j.image(s[a:b]))
		}
	}
	for _, m := range reQuoted.FindAllStringSubmatchIndex(s, -1) {
		a, b := m[4], m[5]
		if r.free(a, b) {
			// The word before is often the resource: `pods "web-1" not found`.
			resource, _, _ := strings.Cut(s[m[2]:m[3]], ".")
			r.add(a, b, j.pseudoGuess(nameKind(resource), s[a:b]))
		}
	}
	for _, m := range reHome.FindAllStringSubmatchIndex(s, -1) {
		a, b := m[4], m[5]
		if r.free(a, b) {
			r.add(a, b, j.pseudo(KindUser, s[a:b]))
		}
	}
	// Identifiers and addresses.
	for _, m := range reUUID.FindAllStringIndex(s, -1) {
		if bounded(s, m[0], m[1]) && r.free(m[0], m[1]) {
			r.add(m[0], m[1], j.pseudo(KindUID, s[m[0]:m[1]]))
		}
	}
	for _, m := range reHex.FindAllStringIndex(s, -1) {
		if !bounded(s, m[0], m[1]) || !r.free(m[0], m[1]) || digestPrefixed(s, m[0]) {
			continue
		}
		r.add(m[0], m[1], j.pseudo(KindContainerID, s[m[0]:m[1]]))
	}
	j.ips(s, r)
	if dict {
		r.gaps(func(a, b int) { j.dictWords(s, a, b, r) })
	}
	return r.String()
}

// trimURLEnd drops punctuation that ends a sentence rather than a URL.
func trimURLEnd(s string, a, b int) int {
	for b > a {
		switch s[b-1] {
		case '.', ',', ';', ':', ')', ']', '}', '!', '?':
			b--
			continue
		}
		break
	}
	return b
}

func digestPrefixed(s string, at int) bool {
	p := s[:at]
	return strings.HasSuffix(p, "sha256:") || strings.HasSuffix(p, "sha512:") || strings.HasSuffix(p, "sha384:")
}

// ipRuns finds IP addresses in s and calls fn with each and its bounds.
// An IPv6 address is a run of hex digits, colons and dots with at least
// two colons that parses as one; an IPv4 address a run of digits and dots
// that parses as one. Neither may be glued to letters or digits, and a run
// does not start inside another run ("1.2.3.4.5" is no address). IPv6
// runs come first, so "::ffff:10.0.0.1" is one address.
func ipRuns(s string, fn func(start, end int, a netip.Addr)) {
	n := len(s)
	for i := 0; i < n; i++ {
		c := s[i]
		if !isHex(c) && c != ':' || i > 0 && (isAlnum(s[i-1]) || s[i-1] == ':' || s[i-1] == '.') {
			continue
		}
		j, colons := i, 0
		for j < n && (isHex(s[j]) || s[j] == ':' || s[j] == '.') {
			if s[j] == ':' {
				colons++
			}
			j++
		}
		if colons < 2 || j < n && isAlnum(s[j]) {
			continue
		}
		k := j
		for k > i && s[k-1] == '.' {
			k--
		}
		a, err := netip.ParseAddr(s[i:k])
		if err != nil {
			for k > i && (s[k-1] == '.' || s[k-1] == ':') {
				k--
			}
			a, err = netip.ParseAddr(s[i:k])
		}
		if err == nil && a.Is6() {
			fn(i, k, a)
			i = j - 1
		}
	}
	for i := 0; i < n; i++ {
		c := s[i]
		if c < '0' || c > '9' || i > 0 && (isAlnum(s[i-1]) || s[i-1] == '.') {
			continue
		}
		j := i
		for j < n && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		if j < n && isAlnum(s[j]) {
			i = j - 1
			continue
		}
		k := j
		for k > i && s[k-1] == '.' {
			k--
		}
		if a, err := netip.ParseAddr(s[i:k]); err == nil && a.Is4() {
			fn(i, k, a)
		}
		i = j - 1
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (j *job) ips(s string, r *replacer) {
	ipRuns(s, func(a, b int, addr netip.Addr) {
		if j.e.pol.keepAddr(addr) || !r.free(a, b) {
			return
		}
		r.add(a, b, j.pseudo(KindIP, s[a:b]))
	})
}

// dictWords replaces, in s[a:b], the words that are names already
// pseudonymised elsewhere. A word is a run of letters, digits and ._-;
// when the whole word is not known, its '_'-separated parts are tried,
// and within a part the longest known runs of '.'-separated labels
// ("node-1" in "node-1.example.com").
func (j *job) dictWords(s string, a, b int, r *replacer) {
	for i := a; i < b; {
		if !isWordChar(s[i]) {
			i++
			continue
		}
		k := i
		for k < b && isWordChar(s[k]) {
			k++
		}
		j.dictWord(s, i, k, r)
		i = k
	}
}

func isWordChar(c byte) bool {
	return isAlnum(c) || c == '.' || c == '-' || c == '_' || c >= 0x80
}

func (j *job) dictWord(s string, a, b int, r *replacer) {
	w := s[a:b]
	if len(w) < dictMinLen {
		return
	}
	if tok, ok := j.known(w); ok {
		r.add(a, b, tok)
		return
	}
	if strings.IndexByte(w, '_') >= 0 {
		at := a
		for _, part := range strings.Split(w, "_") {
			j.dictWord(s, at, at+len(part), r)
			at += len(part) + 1
		}
		return
	}
	if strings.IndexByte(w, '.') < 0 {
		return
	}
	labels := strings.Split(w, ".")
	offs := make([]int, len(labels)+1)
	at := a
	for i, l := range labels {
		offs[i] = at
		at += len(l) + 1
	}
	offs[len(labels)] = b + 1
	for i := 0; i < len(labels); {
		found := false
		for e := len(labels); e > i; e-- {
			if e-i == len(labels) {
				continue // the whole word, tried above
			}
			start, end := offs[i], offs[e]-1
			if tok, ok := j.known(s[start:end]); ok {
				r.add(start, end, tok)
				i, found = e, true
				break
			}
		}
		if !found {
			i++
		}
	}
}

func (j *job) known(w string) (string, bool) {
	if len(w) < dictMinLen || j.e.pol.keepValue(w) {
		return "", false
	}
	tok, ok := j.e.tok.lookup(w)
	if ok {
		j.count(j.e.tok.kindOf(w))
	}
	return tok, ok
}

// leaks reports whether s still holds a value pattern that must not
// survive: secrets, e-mail addresses, IP addresses, UUIDs, long hex ids.
func (j *job) leaks(s string) bool {
	return len(leaks(s, j.e.pol, j.e.tok.isIssued)) > 0
}

// Leaks returns the value-pattern matches in s that a redaction with
// policy p must have replaced: secrets after "Bearer"/"Basic" or
// "password=" and the like, JWTs, e-mail addresses, IP addresses outside
// the kept networks, UUIDs and hex ids of 48 digits or more. Values for
// which issued reports true (tokens) are not leaks. It exists for tests
// and for checking a redacted text.
func Leaks(s string, p *Policy, issued func(string) bool) []string {
	c, err := p.compile()
	if err != nil {
		return []string{err.Error()}
	}
	if issued == nil {
		issued = func(string) bool { return false }
	}
	return leaks(s, c, issued)
}

func leaks(s string, c *compiledPolicy, issued func(string) bool) []string {
	var out []string
	// Each regular expression runs only when s holds what it needs: most
	// values are short and plain.
	if hasFold(s, "bearer") || hasFold(s, "basic") {
		for _, m := range reBearer.FindAllStringSubmatch(s, -1) {
			if m[2] != Masked {
				out = append(out, m[0])
			}
		}
	}
	if strings.Contains(s, "eyJ") {
		out = append(out, reJWT.FindAllString(s, -1)...)
	}
	if strings.ContainsAny(s, "=:") && (hasFold(s, "pass") || hasFold(s, "pwd") || hasFold(s, "secret") ||
		hasFold(s, "token") || hasFold(s, "key") || hasFold(s, "authorization")) {
		for _, m := range reSecret.FindAllStringSubmatch(s, -1) {
			v := strings.Trim(m[3], `"'`)
			if v != Masked && v != "" && !strings.EqualFold(v, "bearer") && !strings.EqualFold(v, "basic") {
				out = append(out, m[0])
			}
		}
	}
	if strings.IndexByte(s, '@') >= 0 {
		for _, m := range reEmail.FindAllString(s, -1) {
			if !issued(m) {
				out = append(out, m)
			}
		}
	}
	if len(s) >= 36 && strings.Count(s, "-") >= 4 {
		for _, m := range reUUID.FindAllStringIndex(s, -1) {
			if bounded(s, m[0], m[1]) {
				out = append(out, s[m[0]:m[1]])
			}
		}
	}
	if len(s) >= 48 {
		for _, m := range reHex.FindAllStringIndex(s, -1) {
			if bounded(s, m[0], m[1]) && !digestPrefixed(s, m[0]) {
				out = append(out, s[m[0]:m[1]])
			}
		}
	}
	ipRuns(s, func(a, b int, addr netip.Addr) {
		if !c.keepAddr(addr) {
			out = append(out, s[a:b])
		}
	})
	return out
}

// hasFold reports whether s contains the lower-case ASCII word w in any
// case.
func hasFold(s, w string) bool {
	n := len(w)
	for i := 0; i+n <= len(s); i++ {
		if s[i]|0x20 == w[0] && strings.EqualFold(s[i:i+n], w) {
			return true
		}
	}
	return false
}
