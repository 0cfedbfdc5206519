package redact

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"sort"
	"strings"
	"sync"
)

// KeySize is the size of a generated key, in bytes.
const KeySize = 32

// MinKeySize is the smallest key accepted.
const MinKeySize = 16

// coreLen is the number of hex digits of a token's hash part. On a
// collision (two values with the same first coreLen digits) the later value
// gets a longer part.
const coreLen = 8

// dictMinLen is the shortest replaced value that is also looked for in
// free text.
const dictMinLen = 3

// GenerateKey returns a new random key.
func GenerateKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generate redaction key: %w", err)
	}
	return k, nil
}

// LoadKey reads a key file: its content, without trailing white space,
// at least MinKeySize bytes. `head -c 32 /dev/urandom | base64 > key`
// makes one.
func LoadKey(path string) ([]byte, error) {
	b, err := readSmallFile(path, 1<<16)
	if err != nil {
		return nil, fmt.Errorf("read redaction key: %w", err)
	}
	k := []byte(strings.TrimRight(string(b), " \t\r\n"))
	if len(k) < MinKeySize {
		return nil, fmt.Errorf("redaction key %s has %d bytes: want at least %d", path, len(k), MinKeySize)
	}
	return k, nil
}

// KeyFingerprint identifies a key without revealing it: the first 16 hex
// digits of HMAC-SHA256(key, "trace-capture redaction key").
func KeyFingerprint(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("trace-capture redaction key"))
	return hex.EncodeToString(m.Sum(nil))[:16]
}

// tokens issues pseudonyms and remembers them. Safe for concurrent use.
type tokens struct {
	mu sync.Mutex

	mac    hash.Hash
	sum    []byte
	core   map[string]string // original -> hash part
	owner  map[string]string // hash part -> original
	issued map[string]bool   // every token handed out
	kinds  map[string]string // original -> first kind (the prefix used in free text)
	pairs  map[[2]string]bool
	// dict holds originals to look for in free text; dictGen grows with it.
	dict    map[string]string // original -> token
	dictGen uint64

	collisions int64
	distinct   map[string]int64 // kind -> distinct originals
}

func newTokens(key []byte) *tokens {
	return &tokens{
		mac:      hmac.New(sha256.New, key),
		core:     map[string]string{},
		owner:    map[string]string{},
		issued:   map[string]bool{},
		kinds:    map[string]string{},
		pairs:    map[[2]string]bool{},
		dict:     map[string]string{},
		distinct: map[string]int64{},
	}
}

// token returns the pseudonym of v as kind: the kind's prefix, '-', and
// the first hex digits of HMAC-SHA256(key, v). The hash part depends on v
// only, so one value has the same hash part under every kind.
func (t *tokens) token(kind, v string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.core[v]
	if !ok {
		t.mac.Reset()
		t.mac.Write([]byte(v))
		t.sum = t.mac.Sum(t.sum[:0])
		full := hex.EncodeToString(t.sum)
		n := coreLen
		c = full[:n]
		for {
			if o, taken := t.owner[c]; !taken || o == v {
				break
			}
			t.collisions++
			n *= 2
			if n > len(full) {
				// Not reachable with SHA-256 in practice; keep tokens
				// distinct anyway.
				c = full + "-" + fmt.Sprint(len(t.core))
				break
			}
			c = full[:n]
		}
		t.core[v], t.owner[c] = c, v
	}
	tok := kindPrefix[kind] + "-" + c
	if !t.pairs[[2]string{kind, v}] {
		t.pairs[[2]string{kind, v}] = true
		t.issued[tok] = true
		t.distinct[kind]++
		if _, seen := t.kinds[v]; !seen {
			t.kinds[v] = kind
		}
		if len(v) >= dictMinLen && !allDigits(v) && kind != KindIP && kind != KindValue {
			if _, in := t.dict[v]; !in {
				t.dict[v] = tok
				t.dictGen++
			}
		}
	}
	return tok
}

// isIssued reports whether s is a token this run handed out.
func (t *tokens) isIssued(s string) bool {
	if len(s) < 5 || strings.IndexByte(s, '-') < 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.issued[s]
}

// lookup returns the token of a known original, for free text.
func (t *tokens) lookup(s string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tok, ok := t.dict[s]
	return tok, ok
}

func (t *tokens) generation() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dictGen
}

// MappingEntry is one pseudonym and the value it replaced.
type MappingEntry struct {
	Token    string `json:"token"`
	Kind     string `json:"kind"`
	Original string `json:"original"`
}

func (t *tokens) entries() []MappingEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]MappingEntry, 0, len(t.pairs))
	for p := range t.pairs {
		out = append(out, MappingEntry{Token: kindPrefix[p[0]] + "-" + t.core[p[1]], Kind: p[0], Original: p[1]})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Token != out[j].Token {
			return out[i].Token < out[j].Token
		}
		return out[i].Original < out[j].Original
	})
	return out
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// kindOf returns the kind an original was first pseudonymised as.
func (t *tokens) kindOf(v string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.kinds[v]
}

// isNamespace reports whether v was pseudonymised as a namespace.
func (t *tokens) isNamespace(v string) bool { return t.kindOf(v) == KindNamespace }

func (t *tokens) dictSize() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.dict)
}
