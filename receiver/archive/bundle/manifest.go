package bundle

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// SchemaVersion is the manifest schema this package writes.
const SchemaVersion = 1

// ManifestName is the name of the manifest entry, always the bundle's first.
const ManifestName = "manifest.json"

// Capture modes.
const (
	ModeLocal   = "local"
	ModeCluster = "cluster"
	ModeImport  = "import"
)

// Manifest describes a bundle. It is written as manifest.json.
type Manifest struct {
	// SchemaVersion is the version of this structure (SchemaVersion).
	SchemaVersion int `json:"schema_version"`
	// Tool names the program and version that wrote the bundle.
	Tool Tool `json:"tool"`
	// Mode is ModeLocal (trace-capture record), ModeCluster (a cluster
	// capture) or ModeImport (converted from other tools' files).
	Mode string `json:"mode"`
	// Window is when spans were received.
	Window Window `json:"window"`
	// SamplingRatePerMillion is the rate the components were configured
	// with, when trace-capture configured them; nil when unknown (record,
	// import).
	SamplingRatePerMillion *int64 `json:"sampling_rate_per_million,omitempty"`
	// Sources counts what each source (service.name and host) sent.
	Sources []Source `json:"sources"`
	// Refused counts requests the receiver refused (malformed, too
	// large, over the budget, ...), by reason; the spans of those that
	// could be attributed to a source are also in that source's Dropped.
	Refused []Refusal `json:"refused,omitempty"`
	// Archives lists the span archives in the bundle.
	Archives []Archive `json:"archives"`
	// Files lists the other files in the bundle (logs, cluster facts).
	Files []string `json:"files,omitempty"`
	// Cluster holds the cluster capture's facts (plan, versions, what
	// was changed and restored); absent in other modes.
	Cluster json.RawMessage `json:"cluster,omitempty"`
	// Redaction reports what a redaction replaced, when one ran.
	Redaction json.RawMessage `json:"redaction,omitempty"`
	// Notes are free-form remarks for whoever reads the bundle.
	Notes []string `json:"notes,omitempty"`
}

// Tool identifies the writer of a bundle.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Window is a time interval.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Source is one sender of spans: a service on a host.
type Source struct {
	// Service is the resource's service.name ("" when it had none).
	Service string `json:"service"`
	// Host is the resource's host.name, or the node a cluster agent ran on.
	Host string `json:"host,omitempty"`
	// Requests, Spans and Bytes count what was accepted and stored.
	Requests int64 `json:"requests"`
	Spans    int64 `json:"spans"`
	Bytes    int64 `json:"bytes"`
	// Dropped counts spans that were received but not stored, by reason.
	Dropped []Drop `json:"dropped,omitempty"`
}

// Drop counts spans not stored for one reason.
type Drop struct {
	Reason string `json:"reason"`
	Spans  int64  `json:"spans"`
}

// Refusal counts requests refused for one reason, with their size and,
// where they could be counted, their spans.
type Refusal struct {
	Reason   string `json:"reason"`
	Requests int64  `json:"requests"`
	Spans    int64  `json:"spans"`
	Bytes    int64  `json:"bytes"`
}

// Archive describes one span archive in the bundle.
type Archive struct {
	// Path is the entry name in the bundle, under spans/.
	Path string `json:"path"`
	// Host is the node whose receiver wrote it ("" for a local capture).
	Host string `json:"host,omitempty"`
	// Records and Spans count its requests and spans.
	Records int64 `json:"records"`
	Spans   int64 `json:"spans"`
	// RawBytes is the uncompressed size of its records; Bytes its size.
	RawBytes int64 `json:"raw_bytes"`
	Bytes    int64 `json:"bytes"`
	// Truncated says the archive was not closed cleanly (its writer died);
	// every complete record in it is still readable.
	Truncated bool `json:"truncated,omitempty"`
}

// TotalSpans sums the spans of every source.
func (m *Manifest) TotalSpans() int64 {
	var n int64
	for _, s := range m.Sources {
		n += s.Spans
	}
	return n
}

// TotalDropped sums the dropped spans of every source.
func (m *Manifest) TotalDropped() int64 {
	var n int64
	for _, s := range m.Sources {
		for _, d := range s.Dropped {
			n += d.Spans
		}
	}
	return n
}

// Normalize sorts the manifest's lists so that equal manifests encode to
// equal bytes.
func (m *Manifest) Normalize() {
	sort.Slice(m.Sources, func(i, j int) bool {
		a, b := m.Sources[i], m.Sources[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.Host < b.Host
	})
	for i := range m.Sources {
		d := m.Sources[i].Dropped
		sort.Slice(d, func(i, j int) bool { return d[i].Reason < d[j].Reason })
	}
	sort.Slice(m.Refused, func(i, j int) bool { return m.Refused[i].Reason < m.Refused[j].Reason })
	sort.Slice(m.Archives, func(i, j int) bool { return m.Archives[i].Path < m.Archives[j].Path })
	sort.Strings(m.Files)
}

// Validate checks the manifest read from a bundle.
func (m *Manifest) Validate() error {
	if m.SchemaVersion < 1 {
		return fmt.Errorf("manifest has no schema_version")
	}
	if m.SchemaVersion > SchemaVersion {
		return fmt.Errorf("manifest schema version %d is newer than this build reads (%d): upgrade trace-capture", m.SchemaVersion, SchemaVersion)
	}
	for _, a := range m.Archives {
		if err := checkName(a.Path); err != nil {
			return fmt.Errorf("manifest lists archive %q: %w", a.Path, err)
		}
	}
	return nil
}
