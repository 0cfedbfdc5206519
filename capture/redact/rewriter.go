package redact

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trace-capture/trace-capture/receiver"
	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
)

// Options configures a redaction. The zero value is usable: the default
// policy, a random key, no mapping file.
type Options struct {
	// Policy says what is kept and how the rest is replaced. Nil means
	// DefaultPolicy().
	Policy *Policy
	// Key is the HMAC-SHA256 key of the pseudonyms. The same key gives the
	// same tokens across runs and bundles; nil means a random key for this
	// run only (tokens then cannot be linked to another bundle's).
	Key []byte
	// MappingFile is where Bundle writes the mapping from tokens back to
	// the values they replaced (mode 0600, merged with an existing mapping
	// of the same key). It is the only place the originals are kept; it
	// never goes into the bundle. Empty means no mapping is written (the
	// redaction cannot be undone).
	MappingFile string
	// Limits bound what Bundle reads from its input.
	Limits bundle.Limits
	// Logger receives lifecycle messages. Nil discards them.
	Logger *slog.Logger

	_ struct{}
}

// Key sources, as the report names them.
const (
	KeyRandom   = "random"
	KeySupplied = "supplied"
)

// RecordRewriter redacts OTLP trace requests and the other contents of a
// bundle with one policy and one key, so that a value gets the same token
// wherever it occurs. It is safe for concurrent use.
//
// In one pass (Rewrite, Sink) a name is looked for in free text (event
// names, exception messages, logs) once it has been seen in a structured
// field (a namespace attribute, a request path, a storage key); Bundle
// reads its input twice so that free text benefits from every name in the
// bundle.
type RecordRewriter struct {
	e         *engine
	policy    *Policy
	keySource string
	keyFP     string
	log       *slog.Logger

	mu        sync.Mutex
	counts    map[string]int64
	records   int64
	spans     int64
	undecoded int64
	files     []FileReport
	names     map[string]string // bundle entry name -> redacted name
	usedNames map[string]bool
	preloaded []MappingEntry
}

// NewRecordRewriter returns a RecordRewriter for opts.
func NewRecordRewriter(opts Options) (*RecordRewriter, error) {
	p := opts.Policy
	if p == nil {
		p = DefaultPolicy()
	}
	c, err := p.compile()
	if err != nil {
		return nil, fmt.Errorf("redaction policy: %w", err)
	}
	key, src := opts.Key, KeySupplied
	if key == nil {
		if key, err = GenerateKey(); err != nil {
			return nil, err
		}
		src = KeyRandom
	} else if len(key) < MinKeySize {
		return nil, fmt.Errorf("redaction key has %d bytes: want at least %d", len(key), MinKeySize)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RecordRewriter{
		e:         newEngine(c, key),
		policy:    p,
		keySource: src,
		keyFP:     KeyFingerprint(key),
		log:       log,
		counts:    map[string]int64{},
		names:     map[string]string{},
		usedNames: map[string]bool{},
	}, nil
}

// Rewrite returns the redacted copy of rec, an OTLP
// ExportTraceServiceRequest in protobuf. It fails only when rec does not
// decode; rec is never returned unredacted.
func (w *RecordRewriter) Rewrite(rec []byte) ([]byte, error) {
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec)
	if err != nil {
		w.mu.Lock()
		w.undecoded++
		w.mu.Unlock()
		return nil, fmt.Errorf("decode OTLP trace request: %w", err)
	}
	j := w.e.newJob(false)
	spans := j.traces(td)
	out, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		return nil, fmt.Errorf("encode OTLP trace request: %w", err)
	}
	w.mu.Lock()
	w.records++
	w.spans += spans
	w.mergeLocked(j)
	w.mu.Unlock()
	return out, nil
}

// Traces redacts td in place and returns its span count.
func (w *RecordRewriter) Traces(td ptrace.Traces) int64 {
	j := w.e.newJob(false)
	spans := j.traces(td)
	w.mu.Lock()
	w.records++
	w.spans += spans
	w.mergeLocked(j)
	w.mu.Unlock()
	return spans
}

// Learn reads rec only to learn the names in its structured fields, so
// that free text redacted afterwards has them replaced too. It changes
// nothing and counts nothing.
func (w *RecordRewriter) Learn(rec []byte) error {
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(rec)
	if err != nil {
		return fmt.Errorf("decode OTLP trace request: %w", err)
	}
	w.e.newJob(true).traces(td)
	return nil
}

// Text scrubs free text: value patterns and every name seen so far.
func (w *RecordRewriter) Text(s string) string {
	j := w.e.newJob(false)
	out := j.scrub(s)
	w.merge(j)
	return out
}

// Value redacts s as the value of attribute key would be ("" when the
// policy drops the key).
func (w *RecordRewriter) Value(key, s string) string {
	j := w.e.newJob(false)
	out := j.apply(w.e.pol.kindOf(key), s)
	w.merge(j)
	return out
}

func (w *RecordRewriter) merge(j *job) {
	w.mu.Lock()
	w.mergeLocked(j)
	w.mu.Unlock()
}

func (w *RecordRewriter) mergeLocked(j *job) {
	if j.discard {
		return
	}
	for k, n := range j.counts {
		w.counts[k] += n
	}
}

// Sink returns a receiver.Sink that redacts each request before next
// consumes it: the Batch is scanned again from the redacted request (so
// host names and sizes are those of what is stored) and its Peer is
// redacted. It also forwards refusal counts when next counts them.
func (w *RecordRewriter) Sink(next receiver.Sink) receiver.Sink {
	return &sink{w: w, next: next}
}

type sink struct {
	w    *RecordRewriter
	next receiver.Sink
}

var (
	_ receiver.Sink           = (*sink)(nil)
	_ receiver.RefusalCounter = (*sink)(nil)
)

func (s *sink) Consume(ctx context.Context, req []byte, b receiver.Batch) error {
	out, err := s.w.Rewrite(req)
	if err != nil {
		return fmt.Errorf("redact request: %w", err)
	}
	res, err := receiver.Scan(out, nil)
	if err != nil {
		return fmt.Errorf("redact request: scan the redacted request: %w", err)
	}
	b.Resources = res
	if b.Peer != "" {
		b.Peer = s.w.Value("client.address", b.Peer)
	}
	return s.next.Consume(ctx, out, b)
}

func (s *sink) CountRefusal(r receiver.Refusal) {
	rc, ok := s.next.(receiver.RefusalCounter)
	if !ok {
		return
	}
	if r.Peer != "" {
		r.Peer = s.w.Value("client.address", r.Peer)
	}
	rc.CountRefusal(r)
}

// Report is what a redaction did, without any original value. It goes
// into the bundle manifest's "redaction" field.
type Report struct {
	// SchemaVersion is ReportSchemaVersion.
	SchemaVersion int `json:"schema_version"`
	// PolicyDigest identifies the policy (Policy.Digest).
	PolicyDigest string `json:"policy_digest"`
	// KeyFingerprint identifies the key (KeyFingerprint); KeySource is
	// KeyRandom or KeySupplied.
	KeyFingerprint string `json:"key_fingerprint"`
	KeySource      string `json:"key_source"`
	// Records and Spans count the span records rewritten.
	Records int64 `json:"records"`
	Spans   int64 `json:"spans"`
	// UndecodableRecords counts records that did not decode and were left
	// out.
	UndecodableRecords int64 `json:"undecodable_records,omitempty"`
	// Replaced counts replacements by kind: pseudonym kinds (namespace,
	// name, ip, ...), "secret" (masked values), "drop" (attributes
	// removed), "bytes" (byte values emptied).
	Replaced map[string]int64 `json:"replaced"`
	// Distinct counts the distinct values replaced, by kind.
	Distinct map[string]int64 `json:"distinct"`
	// Collisions counts token hash collisions (resolved with longer
	// tokens).
	Collisions int64 `json:"collisions,omitempty"`
	// Files says what happened to each file of the bundle that is not a
	// span archive (names as redacted).
	Files []FileReport `json:"files,omitempty"`
}

// ReportSchemaVersion is the version of Report.
const ReportSchemaVersion = 1

// FileReport is what a redaction did with one file.
type FileReport struct {
	Name   string `json:"name"`
	Action string `json:"action"`
}

// File actions.
const (
	FileScrubbedText = "scrubbed-text"
	FileScrubbedJSON = "scrubbed-json"
	FileDropped      = "dropped-binary"
	FileKept         = "kept"
)

// Report returns what the rewriter has done so far.
func (w *RecordRewriter) Report() Report {
	w.e.tok.mu.Lock()
	distinct := maps.Clone(w.e.tok.distinct)
	collisions := w.e.tok.collisions
	w.e.tok.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	return Report{
		SchemaVersion:      ReportSchemaVersion,
		PolicyDigest:       w.policy.Digest(),
		KeyFingerprint:     w.keyFP,
		KeySource:          w.keySource,
		Records:            w.records,
		Spans:              w.spans,
		UndecodableRecords: w.undecoded,
		Replaced:           maps.Clone(w.counts),
		Distinct:           distinct,
		Collisions:         collisions,
		Files:              append([]FileReport(nil), w.files...),
	}
}

// EntryName returns the redacted name of a bundle entry: each folder and
// file name is scrubbed, the result restricted to letters, digits and
// "._-". The same name always gives the same result within a run, and two
// names never give the same result.
func (w *RecordRewriter) EntryName(name string) string {
	w.mu.Lock()
	if out, ok := w.names[name]; ok {
		w.mu.Unlock()
		return out
	}
	w.mu.Unlock()
	j := w.e.newJob(false)
	parts := strings.Split(name, "/")
	for i, p := range parts {
		if i == 0 && len(parts) > 1 {
			continue // the bundle's own folders: spans/, logs/, ...
		}
		base, ext := p, ""
		if k := strings.LastIndexByte(p, '.'); k > 0 && len(p)-k <= 9 && isAlnumString(p[k+1:]) {
			base, ext = p[:k], p[k:]
		}
		parts[i] = safeEntryPart(j.scrub(base)) + ext
	}
	out := strings.Join(parts, "/")
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mergeLocked(j)
	if prev, ok := w.names[name]; ok {
		return prev
	}
	for n, base := 2, out; w.usedNames[out]; n++ {
		out = fmt.Sprintf("%s-%d", base, n)
	}
	w.names[name], w.usedNames[out] = out, true
	return out
}

func isAlnumString(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return s != ""
}

func safeEntryPart(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !isAlnum(c) && c != '.' && c != '-' && c != '_' {
			b[i] = '_'
		}
	}
	if len(b) == 0 || string(b) == "." || string(b) == ".." {
		return "_"
	}
	return string(b)
}
