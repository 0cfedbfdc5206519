package report

import (
	"sort"
	"strings"
	"time"

	"github.com/trace-capture/trace-capture/analyze"
)

// The view model: everything the template shows, already formatted. Strings
// from spans stay plain strings; html/template escapes them where they land.

type pageView struct {
	Title        string
	ToolVersion  string
	GeneratedAt  string
	Window       windowView
	Cards        []card
	Highlights   []highlight
	WarningCount string
	Sources      []sourceRow
	Warnings     []warningRow
	Graph        graphView
	Services     []serviceRow
	Edges        []edgeRow
	EdgeOps      []edgeOpRow
	EdgeOpsMore  int
	Loopback     []edgeRow
	Operations   table[operationRow]
	Roots        table[rootRow]
	SlowPaths    []slowPathRow
	Traces       []traceView
	TraceRows    []traceRow
	LongLived    []longLivedRow
	Errors       []errorRow
	Skew         []skewRow
	K8s          k8sView
	Baseline     *baselineView
	Nav          []navItem
	Data         pageData
}

type navItem struct{ ID, Label string }

type highlight struct{ Label, Text string }

type table[T any] struct {
	Rows    []T
	Total   int
	Omitted int
}

func capRows[T any](rows []T, n int) table[T] {
	t := table[T]{Rows: rows, Total: len(rows)}
	if n > 0 && len(rows) > n {
		t.Rows = rows[:n]
		t.Omitted = len(rows) - n
	}
	return t
}

type windowView struct {
	Start, End, Duration string
	Present              bool
}

type card struct {
	Label, Value, Class, Href, Title string
}

type sourceRow struct {
	Name, Services, Received, Analyzed, Dropped, Note string
	ReceivedV, AnalyzedV, DroppedV                    int64
	SentNothing                                       bool
}

type warningRow struct {
	Code, Severity, Message, Count string
}

// cell is a number shown formatted and sorted by its raw value.
type cell struct {
	Text string
	V    string
}

func msCell(v float64) cell    { return cell{fmtMs(v), num(v)} }
func intCell(v int64) cell     { return cell{fmtInt(v), num(float64(v))} }
func deltaCell(v float64) cell { return cell{fmtDelta(v), num(v)} }

type pctCells struct{ P50, P90, P99, Max cell }

func pcts(p analyze.Percentiles) pctCells {
	return pctCells{msCell(p.P50), msCell(p.P90), msCell(p.P99), msCell(p.Max)}
}

type serviceRow struct {
	Name      string
	Color     int
	Instances string
	Spans     cell
	Errors    cell
	Self, CP  cell
	CPShare   string
	CPWidth   string
}

type edgeRow struct {
	Client, Server           string
	ClientColor, ServerColor int
	Calls, Errors, LongLived cell
	Client_, Server_, Gap    pctCells
	Total                    cell
	Exemplars                []exemplar
	Hot                      bool
}

type edgeOpRow struct {
	Client, Server                  string
	ClientColor, ServerColor        int
	ClientOp, ServerOp              string
	Calls, Errors                   cell
	ClientP50, ClientP99, ServerP99 cell
	GapP50, GapP99                  cell
}

type exemplar struct {
	ID, Short string
	Anchor    string // "" when the trace has no waterfall in this page
}

type operationRow struct {
	Service, Name, Kind string
	Color               int
	Count, Errors, Long cell
	Ms                  pctCells
	Self, CP            cell
	CPShare, CPWidth    string
}

type rootRow struct {
	Service, Name string
	Color         int
	Traces        cell
	Ms            pctCells
	Total         cell
	Shares        []shareView
}

type shareView struct {
	Service, Name, Share string
	Width                string
	Color                int
}

type hop struct {
	Service, Op string
	Color       int
	ShowService bool // false when the previous hop has the same service
}

type slowPathRow struct {
	Rank       int
	Hops       []hop
	PathText   string
	Traces     cell
	Ms         pctCells
	Total      cell
	Bottleneck cell
	Exemplars  []exemplar
}

type traceRow struct {
	Anchor, ID, Short, RootService, RootOp, Bottleneck, Services string
	Color                                                        int
	Duration, Spans, Errors                                      cell
}

type traceView struct {
	Index        int
	Anchor       string
	ID           string
	RootService  string
	RootOp       string
	Color        int
	Start        string
	Duration     string
	SpanCount    string
	Services     string
	Errors       int
	Roots        int
	Bottleneck   string
	Ticks        []tick
	Rows         []spanRow
	Omitted      int // spans of the trace not drawn
	CriticalRows int
}

type tick struct {
	Left, Label string
	Last        bool
}

type spanRow struct {
	I, Parent     int
	Depth         int
	Indent        string
	Service, Name string
	Kind          string
	Color         int
	Left, Width   string
	DurText       string
	DurLeft       string // label position when right of the bar
	DurRight      string // label position when left of the bar (or inside it)
	DurIn         bool   // the label sits inside the bar's right end
	Critical      bool
	Error         bool
	Leaf          bool
	Title         string
	Flags         []string
}

type longLivedRow struct {
	ID, Short, RootService, RootOp, Reason, Detail string
	Color                                          int
	Duration                                       cell
}

type errorRow struct {
	Service, Name, Kind string
	Color               int
	Count               cell
	Messages            []analyze.MessageCount
	Exemplars           []exemplar
}

type skewRow struct {
	Host, Services, Reference string
	Pairs, Violations         cell
	Estimated, Applied        cell
	Capped                    bool
}

type k8sView struct {
	Present   bool
	APIServer []apiRow
	Etcd      []etcdRow
	CRI       []criRow
	Pods      []podRow
}

type apiRow struct {
	Verb, Resource       string
	Count, Errors, Long  cell
	Ms                   pctCells
	EtcdCalls, EtcdTotal cell
}

type etcdRow struct {
	Method, KeyPrefix    string
	Calls, Errors        cell
	Client               pctCells
	ServerCalls          cell
	ServerP50, ServerP99 cell
}

type criRow struct {
	Method, Runtime      string
	Calls, Errors        cell
	Client               pctCells
	ServerCalls          cell
	ServerP50, ServerP99 cell
}

type podRow struct {
	Namespace, Pod     string
	Syncs, Errors      cell
	Ms                 pctCells
	CRICalls, CRITotal cell
}

type baselineView struct {
	Label         string
	Spans, Traces string
	Edges         []changeRow
	Operations    []changeRow
	Paths         []changeRow
	OpsOmitted    int
	PathsOmitted  int
}

type changeRow struct {
	Item                 []hop // one hop for an operation, two for an edge, many for a path
	Kind                 string
	Sep                  string
	BaseCount, Count     cell
	BaseP50, P50, DP50   cell
	BaseP99, P99, DP99   cell
	Ratio                cell
	DP50Class, DP99Class string
	Status               string
	Slower               bool
	Faster               bool
}

// pageData is embedded in the page as JSON for the script: the span details
// of the waterfalls and what the self test expects to find.
type pageData struct {
	Summary    dataSummary `json:"summary"`
	GraphNodes int         `json:"graph_nodes"`
	GraphEdges int         `json:"graph_edges"`
	Tables     []string    `json:"tables"`
	Traces     []dataTrace `json:"traces"`
}

type dataSummary struct {
	Spans    int64 `json:"spans"`
	Traces   int64 `json:"traces"`
	Services int   `json:"services"`
	Warnings int   `json:"warnings"`
}

type dataTrace struct {
	TraceID string     `json:"trace_id"`
	Spans   []dataSpan `json:"spans"`
}

type dataSpan struct {
	SpanID     string      `json:"span_id"`
	Service    string      `json:"service"`
	Name       string      `json:"name"`
	Kind       string      `json:"kind,omitempty"`
	StartMs    float64     `json:"start_ms"`
	DurationMs float64     `json:"duration_ms"`
	SelfMs     float64     `json:"self_ms"`
	CPMs       float64     `json:"cp_ms"`
	Status     string      `json:"status,omitempty"`
	Attrs      [][2]string `json:"attrs,omitempty"`
}

// buildView turns a Result into the page's view model.
func buildView(r *analyze.Result, opts HTMLOptions) pageView {
	o := opts.withDefaults()
	v := pageView{Title: o.Title, ToolVersion: o.ToolVersion}
	if !o.GeneratedAt.IsZero() {
		v.GeneratedAt = o.GeneratedAt.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	colors := serviceColors(r)
	s := r.Summary
	if s.Window.Start != "" {
		v.Window = windowView{Present: true, Start: fmtTime(s.Window.Start), End: fmtTime(s.Window.End), Duration: fmtMs(s.Window.DurationMs)}
	}

	// Slow traces get anchors; exemplars link to them.
	anchors := map[string]string{}
	for i, t := range r.SlowTraces {
		if i < o.MaxWaterfalls {
			anchors[t.TraceID] = "trace-" + itoa(i+1)
		}
	}
	ex := func(ids []string) []exemplar {
		out := make([]exemplar, 0, len(ids))
		for _, id := range ids {
			out = append(out, exemplar{ID: id, Short: shortID(id), Anchor: anchors[id]})
		}
		return out
	}

	var edgeCalls int64
	for _, e := range r.Edges {
		edgeCalls += e.Calls
	}
	warnCount := 0
	for _, w := range r.Warnings {
		if w.Severity != "info" {
			warnCount++
		}
	}
	v.Cards = []card{
		{Label: "spans", Value: fmtInt(s.Spans), Title: fmtInt(s.DuplicateSpans) + " duplicates removed"},
		{Label: "traces", Value: fmtInt(s.Traces)},
		{Label: "services", Value: fmtInt(int64(s.Services)), Href: "#services"},
		{Label: "cross-component calls", Value: fmtInt(edgeCalls), Href: "#edges"},
		{Label: "error spans", Value: fmtInt(s.ErrorSpans), Href: "#errors"},
		{Label: "orphan spans", Value: fmtInt(s.OrphanSpans)},
		{Label: "long-lived traces", Value: fmtInt(s.LongLivedTraces), Href: "#long-lived", Title: "watches and streams, kept out of the latency rankings"},
	}
	wc := card{Label: "warnings", Value: fmtInt(int64(warnCount)), Href: "#warnings"}
	if warnCount == 1 {
		wc.Label = "warning"
	}
	if warnCount > 0 {
		wc.Class = "warn"
	} else {
		wc.Class = "good"
	}
	v.WarningCount = fmtInt(int64(warnCount))
	if n := len(r.Warnings) - warnCount; n > 0 {
		wc.Title = fmtInt(int64(n)) + " more notes"
		v.WarningCount += " · " + fmtInt(int64(n)) + " notes"
		if n == 1 {
			v.WarningCount = strings.TrimSuffix(v.WarningCount, "s")
		}
	}
	v.Cards = append(v.Cards, wc)
	if s.ErrorSpans > 0 {
		v.Cards[4].Class = "warn"
	}

	for _, w := range r.Warnings {
		row := warningRow{Code: w.Code, Severity: w.Severity, Message: w.Message}
		if w.Count > 0 {
			row.Count = fmtInt(w.Count)
		}
		v.Warnings = append(v.Warnings, row)
	}
	for _, src := range r.Sources {
		row := sourceRow{Name: src.Name, Services: strings.Join(src.Services, ", "), Note: src.Note,
			ReceivedV: src.ReceivedSpans, AnalyzedV: src.AnalyzedSpans, SentNothing: src.SentNothing}
		row.Received = "unknown"
		if src.ReceivedSpans >= 0 {
			row.Received = fmtInt(src.ReceivedSpans)
		}
		row.Analyzed = fmtInt(src.AnalyzedSpans)
		var parts []string
		for _, k := range sortedKeys(src.Dropped) {
			row.DroppedV += src.Dropped[k]
			parts = append(parts, k+": "+fmtInt(src.Dropped[k]))
		}
		row.Dropped = strings.Join(parts, ", ")
		v.Sources = append(v.Sources, row)
	}

	v.Graph = layoutGraph(r, colors)

	var cpAll float64
	for _, sv := range r.Services {
		cpAll += sv.CriticalPathMsTotal
	}
	for _, sv := range r.Services {
		inst := strings.Join(sv.Instances, ", ")
		v.Services = append(v.Services, serviceRow{Name: sv.Name, Color: colors[sv.Name], Instances: inst,
			Spans: intCell(sv.Spans), Errors: intCell(sv.ErrorSpans), Self: msCell(sv.SelfMsTotal),
			CP: msCell(sv.CriticalPathMsTotal), CPShare: fmtPct(share(sv.CriticalPathMsTotal, cpAll)),
			CPWidth: pct(100 * share(sv.CriticalPathMsTotal, cpAll))})
	}

	hotEdge := ""
	for _, ge := range v.Graph.Edges {
		if ge.Hot {
			hotEdge = ge.Client + "\x00" + ge.Server
		}
	}
	edgeRows := func(es []analyze.Edge) []edgeRow {
		var out []edgeRow
		for _, e := range es {
			out = append(out, edgeRow{Client: e.ClientService, Server: e.ServerService,
				ClientColor: colors[e.ClientService], ServerColor: colors[e.ServerService],
				Calls: intCell(e.Calls), Errors: intCell(e.Errors), LongLived: intCell(e.LongLived),
				Client_: pcts(e.ClientMs), Server_: pcts(e.ServerMs), Gap: pcts(e.GapMs),
				Total: msCell(e.ClientMsTotal), Exemplars: ex(e.ExemplarTraceIDs),
				Hot: e.ClientService+"\x00"+e.ServerService == hotEdge})
		}
		return out
	}
	v.Edges = edgeRows(r.Edges)
	v.Loopback = edgeRows(r.Loopback)
	for _, e := range r.Edges {
		for _, op := range e.Operations {
			v.EdgeOps = append(v.EdgeOps, edgeOpRow{Client: e.ClientService, Server: e.ServerService,
				ClientColor: colors[e.ClientService], ServerColor: colors[e.ServerService],
				ClientOp: op.ClientOperation, ServerOp: op.ServerOperation,
				Calls: intCell(op.Calls), Errors: intCell(op.Errors),
				ClientP50: msCell(op.ClientMs.P50), ClientP99: msCell(op.ClientMs.P99),
				ServerP99: msCell(op.ServerMs.P99), GapP50: msCell(op.GapMs.P50), GapP99: msCell(op.GapMs.P99)})
		}
		v.EdgeOpsMore += e.OperationsOmitted
	}
	if len(v.EdgeOps) > o.MaxTableRows {
		v.EdgeOpsMore += len(v.EdgeOps) - o.MaxTableRows
		v.EdgeOps = v.EdgeOps[:o.MaxTableRows]
	}

	var opCP float64
	for _, op := range r.Operations {
		opCP += op.CriticalPathMsTotal
	}
	ops := make([]operationRow, 0, len(r.Operations))
	for _, op := range r.Operations {
		ops = append(ops, operationRow{Service: op.Service, Name: op.Name, Kind: op.Kind, Color: colors[op.Service],
			Count: intCell(op.Count), Errors: intCell(op.Errors), Long: intCell(op.LongLived), Ms: pcts(op.Ms),
			Self: msCell(op.SelfMsTotal), CP: msCell(op.CriticalPathMsTotal),
			CPShare: fmtPct(share(op.CriticalPathMsTotal, opCP)), CPWidth: pct(100 * share(op.CriticalPathMsTotal, opCP))})
	}
	v.Operations = capRows(ops, o.MaxTableRows)

	roots := make([]rootRow, 0, len(r.RootOperations))
	for _, ro := range r.RootOperations {
		row := rootRow{Service: ro.Service, Name: ro.Name, Color: colors[ro.Service], Traces: intCell(ro.Traces),
			Ms: pcts(ro.Ms), Total: msCell(ro.MsTotal)}
		for i, cs := range ro.CriticalPath {
			if i == 3 {
				break
			}
			row.Shares = append(row.Shares, shareView{Service: cs.Service, Name: cs.Name, Share: fmtPct(cs.Share), Width: pct(100 * cs.Share), Color: colors[cs.Service]})
		}
		roots = append(roots, row)
	}
	v.Roots = capRows(roots, o.MaxTableRows)

	for i, p := range r.SlowPaths {
		row := slowPathRow{Rank: i + 1, Hops: hops(p.Path, colors), PathText: strings.Join(p.Path, " → "),
			Traces: intCell(p.Traces), Ms: pcts(p.Ms), Total: msCell(p.MsTotal),
			Bottleneck: msCell(p.BottleneckMsTotal), Exemplars: ex(p.ExemplarTraceIDs)}
		v.SlowPaths = append(v.SlowPaths, row)
	}

	for i, t := range r.SlowTraces {
		anchor := anchors[t.TraceID]
		v.TraceRows = append(v.TraceRows, traceRow{Anchor: anchor, ID: t.TraceID, Short: shortID(t.TraceID),
			RootService: t.RootService, RootOp: t.RootOperation, Color: colors[t.RootService],
			Bottleneck: t.Bottleneck, Services: strings.Join(t.Services, ", "),
			Duration: msCell(t.DurationMs), Spans: intCell(int64(t.SpanCount)), Errors: intCell(int64(t.Errors))})
		if i >= o.MaxWaterfalls {
			continue
		}
		tv, dt := buildTrace(t, i, anchor, colors, o.MaxWaterfallSpans)
		v.Traces = append(v.Traces, tv)
		v.Data.Traces = append(v.Data.Traces, dt)
	}

	for _, l := range r.LongLived {
		v.LongLived = append(v.LongLived, longLivedRow{ID: l.TraceID, Short: shortID(l.TraceID), RootService: l.RootService,
			RootOp: l.RootOperation, Reason: l.Reason, Detail: l.Detail, Color: colors[l.RootService], Duration: msCell(l.DurationMs)})
	}
	for _, e := range r.Errors {
		v.Errors = append(v.Errors, errorRow{Service: e.Service, Name: e.Name, Kind: e.Kind, Color: colors[e.Service],
			Count: intCell(e.Count), Messages: e.Messages, Exemplars: ex(e.ExemplarTraceIDs)})
	}
	for _, c := range r.ClockSkew {
		v.Skew = append(v.Skew, skewRow{Host: c.Host, Services: strings.Join(c.Services, ", "), Reference: c.Reference,
			Pairs: intCell(c.Pairs), Violations: intCell(c.Violations), Estimated: msCell(c.EstimatedMs),
			Applied: msCell(c.AppliedMs), Capped: c.Capped})
	}

	k := r.Kubernetes
	for _, a := range k.APIServer {
		v.K8s.APIServer = append(v.K8s.APIServer, apiRow{Verb: a.Verb, Resource: a.Resource, Count: intCell(a.Count),
			Errors: intCell(a.Errors), Long: intCell(a.LongLived), Ms: pcts(a.Ms), EtcdCalls: intCell(a.EtcdCalls),
			EtcdTotal: msCell(a.EtcdMsTotal)})
	}
	for _, e := range k.Etcd {
		v.K8s.Etcd = append(v.K8s.Etcd, etcdRow{Method: e.Method, KeyPrefix: e.KeyPrefix, Calls: intCell(e.Calls),
			Errors: intCell(e.Errors), Client: pcts(e.ClientMs), ServerCalls: intCell(e.ServerCalls),
			ServerP50: msCell(e.ServerMs.P50), ServerP99: msCell(e.ServerMs.P99)})
	}
	for _, c := range k.CRI {
		v.K8s.CRI = append(v.K8s.CRI, criRow{Method: c.Method, Runtime: c.Runtime, Calls: intCell(c.Calls),
			Errors: intCell(c.Errors), Client: pcts(c.ClientMs), ServerCalls: intCell(c.ServerCalls),
			ServerP50: msCell(c.ServerMs.P50), ServerP99: msCell(c.ServerMs.P99)})
	}
	for _, p := range k.Pods {
		v.K8s.Pods = append(v.K8s.Pods, podRow{Namespace: p.Namespace, Pod: p.Pod, Syncs: intCell(p.Syncs),
			Errors: intCell(p.Errors), Ms: pcts(p.Ms), CRICalls: intCell(p.CRICalls), CRITotal: msCell(p.CRIMsTotal)})
	}
	capK8s(&v.K8s, o.MaxTableRows)
	v.K8s.Present = len(v.K8s.APIServer)+len(v.K8s.Etcd)+len(v.K8s.CRI)+len(v.K8s.Pods) > 0

	if b := r.Baseline; b != nil {
		v.Baseline = buildBaseline(b, colors, o.MaxTableRows)
	}

	v.Highlights = highlights(r)

	// Navigation and what the self test expects.
	v.Nav = append(v.Nav, navItem{"warnings", "Warnings"}, navItem{"graph", "Graph"}, navItem{"edges", "Edges"},
		navItem{"operations", "Critical path"}, navItem{"slow-paths", "Slow paths"}, navItem{"slow-traces", "Slow traces"},
		navItem{"errors", "Errors"})
	if v.K8s.Present {
		v.Nav = append(v.Nav, navItem{"kubernetes", "Kubernetes"})
	}
	v.Nav = append(v.Nav, navItem{"clock-skew", "Clock skew"}, navItem{"services", "Services"})
	if v.Baseline != nil {
		v.Nav = append(v.Nav, navItem{"baseline", "Baseline"})
	}
	v.Data.Summary = dataSummary{Spans: s.Spans, Traces: s.Traces, Services: len(r.Services), Warnings: len(r.Warnings)}
	v.Data.GraphNodes = len(v.Graph.Nodes)
	v.Data.GraphEdges = len(v.Graph.Edges)
	v.Data.Tables = []string{}
	for _, t := range []struct {
		id      string
		present bool
	}{
		{"t-edges", len(v.Edges) > 0}, {"t-ops", len(v.Operations.Rows) > 0}, {"t-roots", len(v.Roots.Rows) > 0},
		{"t-paths", len(v.SlowPaths) > 0}, {"t-traces", len(v.TraceRows) > 0}, {"t-errors", len(v.Errors) > 0},
		{"t-skew", len(v.Skew) > 0}, {"t-services", len(v.Services) > 0},
	} {
		if t.present {
			v.Data.Tables = append(v.Data.Tables, t.id)
		}
	}
	if v.Data.Traces == nil {
		v.Data.Traces = []dataTrace{}
	}
	return v
}

func capK8s(k *k8sView, n int) {
	if len(k.APIServer) > n {
		k.APIServer = k.APIServer[:n]
	}
	if len(k.Etcd) > n {
		k.Etcd = k.Etcd[:n]
	}
	if len(k.CRI) > n {
		k.CRI = k.CRI[:n]
	}
	if len(k.Pods) > n {
		k.Pods = k.Pods[:n]
	}
}

func share(part, whole float64) float64 {
	if whole <= 0 || part <= 0 {
		return 0
	}
	return part / whole
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// splitOp splits "service: operation" at the first ": ".
func splitOp(s string) (svc, op string) {
	if i := strings.Index(s, ": "); i >= 0 {
		return s[:i], s[i+2:]
	}
	return "", s
}

func hops(path []string, colors map[string]int) []hop {
	out := make([]hop, 0, len(path))
	for i, p := range path {
		svc, op := splitOp(p)
		out = append(out, hop{Service: svc, Op: op, Color: colors[svc], ShowService: i == 0 || out[i-1].Service != svc})
	}
	return out
}

// serviceColors gives every service a palette slot, in name order, so the
// same service has the same colour in the graph, the tables and the
// waterfalls.
func serviceColors(r *analyze.Result) map[string]int {
	names := map[string]bool{}
	for _, s := range r.Services {
		names[s.Name] = true
	}
	for _, e := range r.Edges {
		names[e.ClientService] = true
		names[e.ServerService] = true
	}
	for _, t := range r.SlowTraces {
		for _, sp := range t.Spans {
			names[sp.Service] = true
		}
	}
	keys := sortedKeys(names)
	m := make(map[string]int, len(keys))
	for i, k := range keys {
		m[k] = i % paletteSize
	}
	return m
}

const paletteSize = 10

// buildTrace lays out one waterfall. When the trace has more spans than
// limit, the critical path and its ancestors are kept first, then the
// others in depth-first order.
func buildTrace(t analyze.Trace, i int, anchor string, colors map[string]int, limit int) (traceView, dataTrace) {
	tv := traceView{Index: i, Anchor: anchor, ID: t.TraceID, RootService: t.RootService, RootOp: t.RootOperation,
		Color: colors[t.RootService], Start: fmtTime(t.Start), Duration: fmtMs(t.DurationMs),
		SpanCount: fmtInt(int64(t.SpanCount)), Services: strings.Join(t.Services, ", "), Errors: t.Errors,
		Roots: t.Roots, Bottleneck: t.Bottleneck}
	dt := dataTrace{TraceID: t.TraceID, Spans: []dataSpan{}}
	spans := t.Spans
	valid := func(p int) bool { return p >= 0 && p < len(spans) }
	keep := make([]bool, len(spans))
	kept := 0
	mark := func(j int) {
		// Keep j and its ancestors (guarding against malformed parent
		// indices that point forward or form a loop).
		for steps := 0; valid(j) && !keep[j] && steps <= len(spans); steps++ {
			keep[j] = true
			kept++
			j = spans[j].Parent
		}
	}
	for j, sp := range spans {
		if sp.Critical && kept < limit {
			mark(j)
		}
	}
	for j := range spans {
		if kept >= limit {
			break
		}
		mark(j)
	}
	newIdx := make([]int, len(spans))
	var order []int
	for j := range spans {
		newIdx[j] = -1
		if keep[j] {
			newIdx[j] = len(order)
			order = append(order, j)
		}
	}
	tv.Omitted = t.SpanCount - len(order)
	if tv.Omitted < 0 {
		tv.Omitted = 0
	}

	// Time axis: from 0 to the last end, at least the root duration.
	total := t.DurationMs
	for _, j := range order {
		if e := spans[j].StartMs + spans[j].DurationMs; e > total {
			total = e
		}
	}
	if total <= 0 {
		total = 1
	}
	for q := 0; q <= 4; q++ {
		tv.Ticks = append(tv.Ticks, tick{Left: pct(float64(q) * 25), Label: fmtMs(total * float64(q) / 4), Last: q == 4})
	}
	hasChild := make([]bool, len(order))
	for _, j := range order {
		if p := spans[j].Parent; valid(p) && newIdx[p] >= 0 {
			hasChild[newIdx[p]] = true
		}
	}
	for n, j := range order {
		sp := spans[j]
		parent := -1
		if valid(sp.Parent) {
			parent = newIdx[sp.Parent]
		}
		left := 100 * sp.StartMs / total
		width := 100 * sp.DurationMs / total
		if width < 0.1 {
			width = 0.1
		}
		row := spanRow{I: n, Parent: parent, Depth: sp.Depth, Indent: itoa(min(sp.Depth, 40) * 14),
			Service: sp.Service, Name: sp.Name, Kind: sp.Kind, Color: colors[sp.Service],
			Left: pct(left), Width: pct(width), DurText: fmtMs(sp.DurationMs), Critical: sp.Critical,
			Error: sp.Status == "ERROR", Leaf: !hasChild[n]}
		switch {
		case left+width < 84:
			row.DurLeft = pct(left + width + 0.6)
		case width >= 22:
			row.DurRight = pct(100 - left - width + 0.6)
			row.DurIn = true
		default:
			row.DurRight = pct(100 - left + 0.6)
		}
		if sp.Critical {
			tv.CriticalRows++
			if sp.CriticalMs < sp.DurationMs {
				row.DurText += " · cp " + fmtMs(sp.CriticalMs)
			}
		}
		row.Title = sp.Service + ": " + sp.Name + " — " + fmtMs(sp.DurationMs) + " (self " + fmtMs(sp.SelfMs) + ")"
		if sp.Critical {
			row.Title += ", critical path " + fmtMs(sp.CriticalMs)
		}
		if sp.Orphan {
			row.Flags = append(row.Flags, "orphan")
		}
		if sp.LongLived {
			row.Flags = append(row.Flags, "long-lived")
		}
		if sp.SkewMs != 0 {
			row.Flags = append(row.Flags, "skew "+fmtDelta(sp.SkewMs))
		}
		tv.Rows = append(tv.Rows, row)

		ds := dataSpan{SpanID: sp.SpanID, Service: sp.Service, Name: sp.Name, Kind: sp.Kind, StartMs: sp.StartMs,
			DurationMs: sp.DurationMs, SelfMs: sp.SelfMs, CPMs: sp.CriticalMs}
		if sp.Status != "" && sp.Status != "UNSET" {
			ds.Status = sp.Status
			if sp.StatusMessage != "" {
				ds.Status += ": " + sp.StatusMessage
			}
		}
		for _, k := range sortedKeys(sp.Attributes) {
			ds.Attrs = append(ds.Attrs, [2]string{k, sp.Attributes[k]})
		}
		if sp.Orphan {
			ds.Attrs = append(ds.Attrs, [2]string{"(orphan)", "parent span not in the capture"})
		}
		if sp.LongLived {
			ds.Attrs = append(ds.Attrs, [2]string{"(long-lived)", "watch or stream: not a request latency"})
		}
		if sp.SkewMs != 0 {
			ds.Attrs = append(ds.Attrs, [2]string{"(clock skew)", "timestamps shifted by " + fmtDelta(sp.SkewMs)})
		}
		if sp.Links > 0 {
			ds.Attrs = append(ds.Attrs, [2]string{"(links)", itoa(sp.Links)})
		}
		dt.Spans = append(dt.Spans, ds)
	}
	return tv, dt
}

func buildBaseline(b *analyze.BaselineDiff, colors map[string]int, maxRows int) *baselineView {
	bv := &baselineView{Label: b.Label, Spans: fmtInt(b.Spans), Traces: fmtInt(b.Traces)}
	row := func(item []hop, kind, sep string, c analyze.Change) changeRow {
		cr := changeRow{Item: item, Kind: kind, Sep: sep, BaseCount: intCell(c.BaseCount), Count: intCell(c.Count),
			BaseP50: msCell(c.BaseMs.P50), P50: msCell(c.Ms.P50), DP50: deltaCell(c.DeltaP50Ms),
			BaseP99: msCell(c.BaseMs.P99), P99: msCell(c.Ms.P99), DP99: deltaCell(c.DeltaP99Ms),
			Ratio: cell{fmtRatio(c.RatioP50), num(c.RatioP50)}, Status: c.Status,
			DP50Class: deltaClass(c.DeltaP50Ms), DP99Class: deltaClass(c.DeltaP99Ms),
			Slower: c.Status == "both" && c.DeltaP99Ms > 0, Faster: c.Status == "both" && c.DeltaP99Ms < 0}
		// A row present on one side only has no change to show; its
		// missing side is a dash, sorted below every number.
		if c.Status != "both" {
			none := cell{Text: "–", V: ""}
			cr.DP50, cr.DP99, cr.Ratio = none, none, none
			cr.DP50Class, cr.DP99Class = "", ""
			if c.BaseCount == 0 {
				cr.BaseP50, cr.BaseP99 = none, none
			}
			if c.Count == 0 {
				cr.P50, cr.P99 = none, none
			}
		}
		return cr
	}
	for _, e := range b.Edges {
		item := []hop{{Service: e.ClientService, Color: colors[e.ClientService], ShowService: true}, {Service: e.ServerService, Color: colors[e.ServerService], ShowService: true}}
		bv.Edges = append(bv.Edges, row(item, "client", "→", e.Client))
	}
	for _, op := range b.Operations {
		bv.Operations = append(bv.Operations, row([]hop{{Service: op.Service, Op: op.Name, Color: colors[op.Service], ShowService: true}}, op.Kind, "", op.Change))
	}
	for _, p := range b.Paths {
		bv.Paths = append(bv.Paths, row(hops(p.Path, colors), "", "→", p.Change))
	}
	if len(bv.Operations) > maxRows {
		bv.OpsOmitted = len(bv.Operations) - maxRows
		bv.Operations = bv.Operations[:maxRows]
	}
	if len(bv.Paths) > maxRows {
		bv.PathsOmitted = len(bv.Paths) - maxRows
		bv.Paths = bv.Paths[:maxRows]
	}
	return bv
}

// highlights are the few sentences at the top that answer "where did the
// time go" before any table.
func highlights(r *analyze.Result) []highlight {
	var out []highlight
	if len(r.Edges) > 0 {
		best := r.Edges[0]
		for _, e := range r.Edges[1:] {
			if e.ClientMsTotal > best.ClientMsTotal {
				best = e
			}
		}
		out = append(out, highlight{"Most time waiting across components:", best.ClientService + " → " + best.ServerService +
			", " + fmtInt(best.Calls) + " calls, " + fmtMs(best.ClientMsTotal) + " in total; client p50 " + fmtMs(best.ClientMs.P50) +
			", p99 " + fmtMs(best.ClientMs.P99) + ", of which the server accounts for p99 " + fmtMs(best.ServerMs.P99) +
			" (gap p99 " + fmtMs(best.GapMs.P99) + ")."})
	}
	if len(r.Operations) > 0 && r.Operations[0].CriticalPathMsTotal > 0 {
		var all float64
		for _, op := range r.Operations {
			all += op.CriticalPathMsTotal
		}
		op := r.Operations[0]
		out = append(out, highlight{"Largest share of critical-path time:", op.Service + ": " + op.Name + " holds " +
			fmtMs(op.CriticalPathMsTotal) + " (" + fmtPct(share(op.CriticalPathMsTotal, all)) + ") over " + fmtInt(op.Count) + " spans."})
	}
	if len(r.SlowPaths) > 0 {
		p := r.SlowPaths[0]
		out = append(out, highlight{"Top slow path:", strings.Join(p.Path, " → ") + " — " + fmtInt(p.Traces) + " traces, p99 " + fmtMs(p.Ms.P99) + "."})
	}
	if len(r.SlowTraces) > 0 {
		t := r.SlowTraces[0]
		s := t.RootService + ": " + t.RootOperation + " took " + fmtMs(t.DurationMs)
		if t.Bottleneck != "" {
			s += ", bottleneck " + t.Bottleneck
		}
		out = append(out, highlight{"Slowest trace:", s + "."})
	}
	return out
}

// HTMLOptions configures WriteHTML. The zero value is usable.
type HTMLOptions struct {
	// Title is the page title. Empty means "trace-capture report".
	Title string
	// GeneratedAt is shown in the header; the zero time hides it. The report
	// never reads the clock itself.
	GeneratedAt time.Time
	// ToolVersion is shown in the header and footer when not empty.
	ToolVersion string
	// MaxWaterfalls bounds the slow traces drawn as waterfalls (the others
	// are still listed). Zero means 10.
	MaxWaterfalls int
	// MaxWaterfallSpans bounds the spans drawn per waterfall; the critical
	// path is kept first. Zero means 300.
	MaxWaterfallSpans int
	// MaxTableRows bounds the rows of each table (operations, edge
	// breakdown, Kubernetes groups, baseline); report.json keeps them all.
	// Zero means 500.
	MaxTableRows int
}

func (o HTMLOptions) withDefaults() HTMLOptions {
	if o.Title == "" {
		o.Title = "trace-capture report"
	}
	if o.MaxWaterfalls <= 0 {
		o.MaxWaterfalls = 10
	}
	if o.MaxWaterfallSpans <= 0 {
		o.MaxWaterfallSpans = 300
	}
	if o.MaxTableRows <= 0 {
		o.MaxTableRows = 500
	}
	return o
}

// wbr splits s after every "/" so that long routes and keys wrap at their
// separators; the template puts a <wbr> between the (escaped) pieces.
func wbr(s string) []string {
	var out []string
	for len(s) > 0 && len(out) < 64 {
		i := strings.IndexByte(s, '/')
		if i < 0 || i == len(s)-1 {
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return append(out, s)
}

// deltaClass colours a latency change: slower is "up" (bad), faster "down".
func deltaClass(d float64) string {
	switch {
	case d > 0:
		return "up"
	case d < 0:
		return "down"
	}
	return ""
}
