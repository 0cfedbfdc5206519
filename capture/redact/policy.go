package redact

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"
)

// PolicyVersion is the policy file version this package reads.
const PolicyVersion = 1

// Kinds: what a rule does with a value. Pseudonym kinds replace the value
// with a typed token ("ns-3f9a1c2b"); structured kinds parse the value and
// replace only its identifying parts.
const (
	KindKeep  = "keep"  // the value is kept verbatim
	KindDrop  = "drop"  // the attribute is removed
	KindMask  = "mask"  // the value becomes REDACTED; nothing is mapped
	KindScrub = "scrub" // free text: value patterns and known names are replaced
	KindValue = "value" // one pseudonym for the whole value ("val-…")

	// Pseudonym kinds.
	KindNamespace   = "namespace"    // ns-…
	KindName        = "name"         // name-…: a Kubernetes object name
	KindPod         = "pod"          // pod-…
	KindNode        = "node"         // node-…
	KindHost        = "host"         // host-…
	KindUser        = "user"         // user-… (system:serviceaccount:<ns>:<name> keeps its shape)
	KindUID         = "uid"          // uid-…
	KindContainerID = "container-id" // cid-…
	KindInstance    = "instance"     // inst-…
	KindIP          = "ip"           // ip-…
	KindEmail       = "email"        // email-…
	KindImage       = "image"        // image references: registry and repository (reg-…, image-…)

	// Structured kinds.
	KindAddress   = "address"    // host[:port], IP[:port], URL or socket path
	KindURL       = "url"        // a full URL or a request target (/api/v1/namespaces/…?query)
	KindQuery     = "query"      // a URL query string
	KindEtcdKey   = "etcd-key"   // /registry/<resource>/<namespace>/<name>
	KindUserAgent = "user-agent" // product tokens kept, names replaced
	KindPodRef    = "pod-ref"    // <namespace>/<pod>
	KindCRIName   = "cri-name"   // <pod>_<namespace>_<uid>_<attempt>
)

// Kind "secret" only appears in reports: masked values.
const kindSecret = "secret"

// kindPrefix is the token prefix of each pseudonym kind.
var kindPrefix = map[string]string{
	KindValue:       "val",
	KindNamespace:   "ns",
	KindName:        "name",
	KindPod:         "pod",
	KindNode:        "node",
	KindHost:        "host",
	KindUser:        "user",
	KindUID:         "uid",
	KindContainerID: "cid",
	KindInstance:    "inst",
	KindIP:          "ip",
	KindEmail:       "email",
	kindRegistry:    "reg",
	KindImage:       "image",
}

// kindRegistry is the kind of the registry part of an image reference.
const kindRegistry = "registry"

var structuredKinds = map[string]bool{
	KindKeep: true, KindDrop: true, KindMask: true, KindScrub: true,
	KindAddress: true, KindURL: true, KindQuery: true, KindEtcdKey: true,
	KindUserAgent: true, KindPodRef: true, KindCRIName: true,
}

// Span name modes.
const (
	SpanNamesRedact = "redact"
	SpanNamesKeep   = "keep"
)

// Policy says which values a redaction keeps and how it replaces the
// others. Load one with LoadPolicy or ParsePolicy; DefaultPolicy is the
// built-in one. A Policy must not be changed once it is in use.
type Policy struct {
	// Version is PolicyVersion.
	Version int `json:"version"`
	// Base is "default" (the default: this policy is merged onto
	// DefaultPolicy) or "none" (this policy stands alone).
	Base string `json:"base,omitempty"`
	// Keep lists attribute keys (globs: * matches any run of characters)
	// whose values are kept verbatim.
	Keep []string `json:"keep,omitempty"`
	// Rules map attribute keys to a kind; the first match wins, after Keep.
	Rules []Rule `json:"rules,omitempty"`
	// Default is the kind of keys no entry matches: scrub, mask, drop or
	// value.
	Default string `json:"default,omitempty"`
	// SpanNames is SpanNamesRedact or SpanNamesKeep.
	SpanNames string `json:"span_names,omitempty"`
	// KeepValues are values never replaced.
	KeepValues []string `json:"keep_values,omitempty"`
	// KeepValuePatterns are regular expressions of values never replaced.
	KeepValuePatterns []string `json:"keep_value_patterns,omitempty"`
	// KeepNetworks are CIDR prefixes of IP addresses kept verbatim.
	KeepNetworks []string `json:"keep_networks,omitempty"`
	// KeepRegistries are image registries whose references are kept.
	KeepRegistries []string `json:"keep_registries,omitempty"`
	// Patterns are extra value patterns for free text.
	Patterns []Pattern `json:"patterns,omitempty"`

	// userKeep and userRules count the entries of Keep and Rules that
	// came from a user policy merged onto a base: they are tried first.
	userKeep, userRules int

	once     sync.Once
	compiled *compiledPolicy
	err      error
}

// Rule gives the attribute keys matching Keys the kind As.
type Rule struct {
	Keys []string `json:"keys"`
	As   string   `json:"as"`
}

// Pattern is a value pattern: in free text, each match of Regex (or of its
// first group, when it has one) becomes As (mask or a pseudonym kind).
type Pattern struct {
	Name  string `json:"name,omitempty"`
	Regex string `json:"regex"`
	As    string `json:"as"`
}

//go:embed default-policy.yaml
var defaultPolicyYAML []byte

// DefaultPolicyYAML returns the text of the default policy file.
func DefaultPolicyYAML() []byte { return bytes.Clone(defaultPolicyYAML) }

// DefaultPolicy returns the built-in policy: sensible for Kubernetes,
// etcd and CRI attributes.
func DefaultPolicy() *Policy {
	p, err := parse(defaultPolicyYAML)
	if err != nil {
		panic("redact: default policy: " + err.Error())
	}
	return p
}

// LoadPolicy reads a policy file (YAML or JSON) and merges it onto the
// default policy unless it says `base: none`.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read redaction policy: %w", err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("read redaction policy %s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy parses a policy (YAML or JSON; unknown fields are errors),
// merges it onto the default policy unless it says `base: none`, and
// checks it.
func ParsePolicy(data []byte) (*Policy, error) {
	user, err := parse(data)
	if err != nil {
		return nil, err
	}
	switch user.Base {
	case "", "default":
		return merge(DefaultPolicy(), user), nil
	case "none":
		return user, nil
	default:
		return nil, fmt.Errorf("base %q: want default or none", user.Base)
	}
}

func parse(data []byte) (*Policy, error) {
	var p Policy
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return nil, fmt.Errorf("parse redaction policy: %w", err)
	}
	if p.Version != PolicyVersion {
		return nil, fmt.Errorf("redaction policy version %d: this build reads version %d", p.Version, PolicyVersion)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// merge puts user's entries before base's: the user's keep entries and
// rules are tried before the base's, so a user rule beats a default keep
// entry.
func merge(base, user *Policy) *Policy {
	return &Policy{
		Version:           PolicyVersion,
		Base:              "none",
		Keep:              append(slices.Clone(user.Keep), base.Keep...),
		Rules:             append(slices.Clone(user.Rules), base.Rules...),
		Default:           cmpOr(user.Default, base.Default),
		SpanNames:         cmpOr(user.SpanNames, base.SpanNames),
		KeepValues:        append(slices.Clone(user.KeepValues), base.KeepValues...),
		KeepValuePatterns: append(slices.Clone(user.KeepValuePatterns), base.KeepValuePatterns...),
		KeepNetworks:      append(slices.Clone(user.KeepNetworks), base.KeepNetworks...),
		KeepRegistries:    append(slices.Clone(user.KeepRegistries), base.KeepRegistries...),
		Patterns:          append(slices.Clone(user.Patterns), base.Patterns...),
		userKeep:          len(user.Keep),
		userRules:         len(user.Rules),
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Validate checks the policy's kinds, patterns and networks.
func (p *Policy) Validate() error {
	_, err := p.compile()
	return err
}

// Digest identifies the policy: "sha256:" and the hash of its canonical
// JSON encoding.
func (p *Policy) Digest() string {
	c := struct {
		Version           int       `json:"version"`
		Keep              []string  `json:"keep"`
		Rules             []Rule    `json:"rules"`
		Default           string    `json:"default"`
		SpanNames         string    `json:"span_names"`
		KeepValues        []string  `json:"keep_values"`
		KeepValuePatterns []string  `json:"keep_value_patterns"`
		KeepNetworks      []string  `json:"keep_networks"`
		KeepRegistries    []string  `json:"keep_registries"`
		Patterns          []Pattern `json:"patterns"`
		UserKeep          int       `json:"user_keep"`
		UserRules         int       `json:"user_rules"`
	}{PolicyVersion, p.Keep, p.Rules, p.defaultKind(), p.spanNames(), p.KeepValues, p.KeepValuePatterns,
		p.KeepNetworks, p.KeepRegistries, p.Patterns, p.userKeep, p.userRules}
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (p *Policy) defaultKind() string { return cmpOr(p.Default, KindScrub) }
func (p *Policy) spanNames() string   { return cmpOr(p.SpanNames, SpanNamesRedact) }

// compiledPolicy is a Policy ready for use.
type compiledPolicy struct {
	exact      map[string]string // key -> kind, for keys without '*'
	globs      []globRule        // in order, with their position
	exactPos   map[string]int    // position of the exact entry
	def        string
	spanNames  string
	keepValues map[string]bool
	keepRe     []*regexp.Regexp
	networks   []netip.Prefix
	registries map[string]bool
	patterns   []compiledPattern

	mu    sync.RWMutex
	cache map[string]string
}

type globRule struct {
	pos   int
	parts []string // the glob split on '*'
	kind  string
}

type compiledPattern struct {
	name string
	re   *regexp.Regexp
	kind string
}

func (p *Policy) compile() (*compiledPolicy, error) {
	p.once.Do(func() { p.compiled, p.err = p.doCompile() })
	return p.compiled, p.err
}

func (p *Policy) doCompile() (*compiledPolicy, error) {
	c := &compiledPolicy{
		exact:      map[string]string{},
		exactPos:   map[string]int{},
		keepValues: map[string]bool{"": true},
		registries: map[string]bool{},
		cache:      map[string]string{},
	}
	// Order: user keep, user rules, then the rest of keep, the rest of
	// rules (a policy that stands alone has no user layer: keep, rules).
	type entry struct {
		key, kind string
	}
	var order []entry
	for _, k := range p.Keep[:p.userKeep] {
		order = append(order, entry{k, KindKeep})
	}
	for _, r := range p.Rules[:p.userRules] {
		for _, k := range r.Keys {
			order = append(order, entry{k, r.As})
		}
	}
	for _, k := range p.Keep[p.userKeep:] {
		order = append(order, entry{k, KindKeep})
	}
	for _, r := range p.Rules[p.userRules:] {
		for _, k := range r.Keys {
			order = append(order, entry{k, r.As})
		}
	}
	for _, r := range p.Rules {
		if r.As == "" {
			return nil, fmt.Errorf("redaction rule for keys %q has no `as`", r.Keys)
		}
		if err := checkKind(r.As, false); err != nil {
			return nil, fmt.Errorf("redaction rule for keys %q: %w", r.Keys, err)
		}
		if len(r.Keys) == 0 {
			return nil, fmt.Errorf("redaction rule %q has no keys", r.As)
		}
	}
	for i, e := range order {
		if e.key == "" {
			return nil, errors.New("redaction policy lists an empty key")
		}
		if !strings.Contains(e.key, "*") {
			if _, ok := c.exact[e.key]; !ok {
				c.exact[e.key], c.exactPos[e.key] = e.kind, i
			}
			continue
		}
		c.globs = append(c.globs, globRule{pos: i, parts: strings.Split(e.key, "*"), kind: e.kind})
	}
	c.def = p.defaultKind()
	switch c.def {
	case KindScrub, KindMask, KindDrop, KindValue:
	default:
		return nil, fmt.Errorf("redaction policy default %q: want scrub, mask, drop or value", c.def)
	}
	c.spanNames = p.spanNames()
	if c.spanNames != SpanNamesRedact && c.spanNames != SpanNamesKeep {
		return nil, fmt.Errorf("redaction policy span_names %q: want redact or keep", c.spanNames)
	}
	for _, v := range p.KeepValues {
		c.keepValues[v] = true
	}
	for _, s := range p.KeepValuePatterns {
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("redaction policy keep_value_patterns: %w", err)
		}
		c.keepRe = append(c.keepRe, re)
	}
	for _, s := range p.KeepNetworks {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("redaction policy keep_networks: %w", err)
		}
		c.networks = append(c.networks, pfx.Masked())
	}
	for _, r := range p.KeepRegistries {
		c.registries[strings.ToLower(r)] = true
	}
	for i, pt := range p.Patterns {
		re, err := regexp.Compile(pt.Regex)
		if err != nil {
			return nil, fmt.Errorf("redaction policy pattern %d (%s): %w", i+1, pt.Name, err)
		}
		if err := checkKind(pt.As, true); err != nil {
			return nil, fmt.Errorf("redaction policy pattern %d (%s): %w", i+1, pt.Name, err)
		}
		c.patterns = append(c.patterns, compiledPattern{name: pt.Name, re: re, kind: pt.As})
	}
	return c, nil
}

func checkKind(k string, pattern bool) error {
	if _, ok := kindPrefix[k]; ok && k != kindRegistry {
		return nil
	}
	if pattern {
		if k == KindMask {
			return nil
		}
		return fmt.Errorf("kind %q: a pattern becomes mask or a pseudonym kind (%s)", k, strings.Join(pseudonymKinds(), ", "))
	}
	if structuredKinds[k] {
		return nil
	}
	return fmt.Errorf("unknown kind %q", k)
}

func pseudonymKinds() []string {
	var ks []string
	for k := range kindPrefix {
		if k != kindRegistry {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

// kindOf returns the kind of attribute key k.
func (c *compiledPolicy) kindOf(k string) string {
	c.mu.RLock()
	kind, ok := c.cache[k]
	c.mu.RUnlock()
	if ok {
		return kind
	}
	kind = c.def
	best := int(^uint(0) >> 1)
	if kk, ok := c.exact[k]; ok {
		kind, best = kk, c.exactPos[k]
	}
	for _, g := range c.globs {
		if g.pos >= best {
			break
		}
		if globMatch(g.parts, k) {
			kind, best = g.kind, g.pos
			break
		}
	}
	c.mu.Lock()
	if len(c.cache) > 1<<16 {
		clear(c.cache)
	}
	c.cache[k] = kind
	c.mu.Unlock()
	return kind
}

// globMatch matches s against a glob split on '*'.
func globMatch(parts []string, s string) bool {
	if len(parts) == 1 {
		return parts[0] == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// keepValue reports whether v is never replaced.
func (c *compiledPolicy) keepValue(v string) bool {
	if c.keepValues[v] {
		return true
	}
	for _, re := range c.keepRe {
		if re.MatchString(v) {
			return true
		}
	}
	return false
}

func (c *compiledPolicy) keepAddr(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.networks {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
