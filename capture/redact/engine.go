package redact

import (
	"net/netip"
	"regexp"
	"strings"
	"sync"
)

// engine holds what every job shares: the policy, the tokens and a memo
// of scrubbed texts. Safe for concurrent use.
type engine struct {
	pol *compiledPolicy
	tok *tokens

	memoMu  sync.Mutex
	memo    map[memoKey]memoVal
	memoGen uint64
}

type memoKey struct {
	s    string
	dict bool
}

type memoVal struct {
	out   string
	kinds []string // what the scrub counted, counted again on a hit
}

// memoMax bounds the memo; memoMaxLen the texts it holds.
const (
	memoMax    = 1 << 16
	memoMaxLen = 4096
)

func newEngine(pol *compiledPolicy, key []byte) *engine {
	return &engine{pol: pol, tok: newTokens(key), memo: map[memoKey]memoVal{}}
}

// job is the work on one record (or one file): it counts what it replaced.
// Not safe for concurrent use.
type job struct {
	e       *engine
	learn   bool // only register names; change nothing, count nothing
	discard bool // a dry run: its counts are not merged
	counts  map[string]int64
	trail   []string
	depth   int // nesting of scrubText: a guard against runaway recursion
}

// maxDepth bounds the nesting of scrubText (a URL in a message in a
// field...); deeper text is masked whole.
const maxDepth = 6

func (e *engine) newJob(learn bool) *job {
	return &job{e: e, learn: learn, counts: map[string]int64{}}
}

func (j *job) count(kind string) {
	if j.learn {
		return
	}
	j.counts[kind]++
	j.trail = append(j.trail, kind)
}

func (j *job) mark() int { return len(j.trail) }

func (j *job) cached(s string, dict bool) (string, bool) {
	if len(s) > memoMaxLen {
		return "", false
	}
	e := j.e
	gen := e.tok.generation()
	e.memoMu.Lock()
	if e.memoGen != gen {
		clear(e.memo)
		e.memoGen = gen
	}
	v, ok := e.memo[memoKey{s, dict}]
	e.memoMu.Unlock()
	if !ok {
		return "", false
	}
	for _, k := range v.kinds {
		j.count(k)
	}
	return v.out, true
}

func (j *job) remember(s string, dict bool, out string, start int) {
	if len(s) > memoMaxLen {
		return
	}
	e := j.e
	gen := e.tok.generation()
	kinds := append([]string(nil), j.trail[start:]...)
	e.memoMu.Lock()
	if e.memoGen != gen {
		clear(e.memo)
		e.memoGen = gen
	}
	if len(e.memo) >= memoMax {
		clear(e.memo)
	}
	e.memo[memoKey{s, dict}] = memoVal{out: out, kinds: kinds}
	e.memoMu.Unlock()
}

// pseudo returns the token of v as kind, or v itself when the policy
// keeps it (or it is a token already).
func (j *job) pseudo(kind, v string) string {
	if v == "" || j.e.pol.keepValue(v) || j.e.tok.isIssued(v) {
		return v
	}
	j.count(kind)
	return j.e.tok.token(kind, v)
}

// pseudoGuess is pseudo with the kind refined by the value's shape: an IP
// address, a UUID or a long hex id keep their own kind.
func (j *job) pseudoGuess(kind, v string) string {
	return j.pseudo(shapeKind(kind, v), v)
}

var reUUIDExact = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func shapeKind(kind, v string) string {
	if _, err := netip.ParseAddr(v); err == nil {
		return KindIP
	}
	if len(v) == 36 && reUUIDExact.MatchString(v) {
		return KindUID
	}
	if len(v) >= 48 && isHexString(v) {
		return KindContainerID
	}
	return kind
}

func isHexString(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// apply returns s redacted as kind (a string attribute value). Whatever
// the kind (but keep), the result holds no value pattern that Leaks finds.
func (j *job) apply(kind, s string) string {
	out := j.applyKind(kind, s)
	if kind != KindKeep && out != "" && !j.learn && j.leaks(out) {
		out = j.scrub(out)
	}
	return out
}

func (j *job) applyKind(kind, s string) string {
	if s == "" {
		return s
	}
	switch kind {
	case KindKeep:
		return s
	case KindDrop:
		j.count(KindDrop)
		return ""
	case KindMask:
		if s == Masked {
			return s
		}
		j.count(kindSecret)
		return Masked
	case KindScrub:
		return j.scrub(s)
	case KindURL:
		return j.url(s)
	case KindQuery:
		return j.query(s)
	case KindEtcdKey:
		return j.etcdKey(s)
	case KindAddress:
		return j.address(s)
	case KindUserAgent:
		return j.userAgent(s)
	case KindPodRef:
		return j.podRef(s)
	case KindCRIName:
		return j.criName(s)
	case KindUser:
		return j.user(s)
	case KindImage:
		return j.image(s)
	case KindIP:
		if a, err := netip.ParseAddr(s); err == nil && j.e.pol.keepAddr(a) {
			return s
		}
		return j.pseudo(KindIP, s)
	default:
		return j.pseudoGuess(kind, s)
	}
}

// spanName redacts a span name: a route ("GET /api/v1/namespaces/{:namespace}/pods")
// or a path is redacted as a URL (templates are kept), anything else only
// for value patterns, never for known names.
func (j *job) spanName(n string) string {
	if n == "" || j.learn && !strings.Contains(n, "/") {
		return n
	}
	if i := strings.IndexByte(n, ' '); i > 0 && i+1 < len(n) && n[i+1] == '/' && isUpperWord(n[:i]) {
		return n[:i+1] + j.url(n[i+1:])
	}
	if n[0] == '/' {
		return j.url(n)
	}
	return j.scrubText(n, false)
}

func isUpperWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
