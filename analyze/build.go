package analyze

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// percentilesSorted returns the nearest-rank percentiles of ascending d.
func percentilesSorted(d []int64) Percentiles {
	n := len(d)
	if n == 0 {
		return Percentiles{}
	}
	rank := func(p int) float64 {
		k := (p*n + 99) / 100 // ceil(p/100 · n) in integers
		return ms(d[max(1, k)-1])
	}
	return Percentiles{P50: rank(50), P90: rank(90), P99: rank(99), Max: ms(d[n-1])}
}

func rfc3339(ns int64) string {
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// buildResult turns the aggregates into the Result.
func buildResult(opts *Options, st *store, asm *assembly, sk *skewResult, tw *traceWork, ag *aggregator, in *inputStats) *Result {
	r := &Result{
		SchemaVersion: SchemaVersion,
		Sources:       []Source{}, Services: []Service{}, Edges: []Edge{}, Loopback: []Edge{},
		Operations: []Operation{}, RootOperations: []RootOperation{}, SlowPaths: []SlowPath{},
		SlowTraces: []Trace{}, LongLived: []LongLivedTrace{}, Errors: []ErrorGroup{},
		ClockSkew: sk.rows, Warnings: []Warning{},
		Kubernetes: Kubernetes{APIServer: []APIRequestGroup{}, Etcd: []EtcdGroup{}, CRI: []CRIGroup{}, Pods: []PodGroup{}},
	}
	if r.ClockSkew == nil {
		r.ClockSkew = []ClockSkew{}
	}
	s := &r.Summary
	s.Records, s.RecordBytes, s.BadRecords = in.records, in.bytes, in.bad
	s.Spans, s.DuplicateSpans, s.Traces = asm.spans, asm.dups, int64(len(st.traceIDs))
	s.Services = len(ag.svcs)
	s.OrphanSpans = asm.orphans
	s.ErrorSpans, s.LongLivedSpans, s.LongLivedTraces, s.LinkedSpans = ag.errSpans, ag.longSpans, ag.longTr, ag.linked
	if ag.maxEnd >= ag.minStart && asm.spans > 0 {
		s.Window = Window{Start: rfc3339(ag.minStart), End: rfc3339(ag.maxEnd), DurationMs: ms(ag.maxEnd - ag.minStart)}
	}
	str := func(id int32) string { return st.strs[id] }

	// Services.
	instances := map[int32]map[string]bool{}
	for _, rs := range st.res {
		inst := rs.host
		if inst == 0 {
			inst = rs.instance
		}
		if inst == 0 {
			continue
		}
		if instances[rs.service] == nil {
			instances[rs.service] = map[string]bool{}
		}
		instances[rs.service][str(inst)] = true
	}
	for id, sv := range ag.svcs {
		row := Service{Name: str(id), Instances: []string{}, Spans: sv.spans, ErrorSpans: sv.errors,
			SelfMsTotal: ms(sv.self), CriticalPathMsTotal: ms(sv.cp)}
		for i := range instances[id] {
			row.Instances = append(row.Instances, i)
		}
		slices.Sort(row.Instances)
		if len(row.Instances) > 20 {
			row.Instances = row.Instances[:20]
		}
		r.Services = append(r.Services, row)
	}
	slices.SortFunc(r.Services, func(a, b Service) int { return cmp.Compare(a.Name, b.Name) })

	// Edges and loopback.
	r.Edges = buildEdges(st, ag.ss, ag.edges)
	r.Loopback = buildEdges(st, ag.ss, ag.loops)

	// Operations.
	for i := range ag.ops {
		o := &ag.ops[i]
		r.Operations = append(r.Operations, Operation{
			Service: str(o.svc), Name: str(o.name), Kind: kindNames[o.kind],
			Count: o.count, Errors: o.errors, LongLived: o.long,
			Ms: ag.ss.pct(o.d), MsTotal: ms(o.total), SelfMsTotal: ms(o.self), CriticalPathMsTotal: ms(o.cp),
		})
	}
	slices.SortFunc(r.Operations, func(a, b Operation) int {
		if c := cmp.Compare(b.CriticalPathMsTotal, a.CriticalPathMsTotal); c != 0 {
			return c
		}
		return cmpOp(a.Service, a.Name, a.Kind, b.Service, b.Name, b.Kind)
	})
	var truncated []string
	if m := opts.maxOperations(); len(r.Operations) > m {
		truncated = append(truncated, fmt.Sprintf("operations (%d of %d kept)", m, len(r.Operations)))
		r.Operations = r.Operations[:m]
	}

	// Root operations.
	for _, ra := range ag.roots {
		o := &ag.ops[ra.op]
		row := RootOperation{Service: str(o.svc), Name: str(o.name), Traces: ra.n,
			Ms: ag.ss.pct(ra.d), MsTotal: ms(ra.total), CriticalPath: []CriticalShare{}}
		var sum int64
		for _, v := range ra.shares {
			sum += v
		}
		for op, v := range ra.shares {
			so := &ag.ops[op]
			share := 0.0
			if sum > 0 {
				share = float64(v) / float64(sum)
			}
			row.CriticalPath = append(row.CriticalPath, CriticalShare{Service: str(so.svc), Name: str(so.name), MsTotal: ms(v), Share: share})
		}
		slices.SortFunc(row.CriticalPath, func(a, b CriticalShare) int {
			if c := cmp.Compare(b.MsTotal, a.MsTotal); c != 0 {
				return c
			}
			if c := cmp.Compare(a.Service, b.Service); c != 0 {
				return c
			}
			return cmp.Compare(a.Name, b.Name)
		})
		// Same (service, name) may appear under two kinds: merge them.
		row.CriticalPath = mergeShares(row.CriticalPath)
		if len(row.CriticalPath) > 10 {
			row.CriticalPath = row.CriticalPath[:10]
		}
		r.RootOperations = append(r.RootOperations, row)
	}
	slices.SortFunc(r.RootOperations, func(a, b RootOperation) int {
		if c := cmp.Compare(b.MsTotal, a.MsTotal); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})

	// Slow paths.
	for _, pa := range ag.paths {
		row := SlowPath{Traces: pa.n, Ms: ag.ss.pct(pa.d), MsTotal: ms(pa.total),
			BottleneckMsTotal: ms(pa.bneck), ExemplarTraceIDs: pa.ex.ids(st)}
		for _, op := range pa.ops {
			o := &ag.ops[op]
			row.Path = append(row.Path, str(o.svc)+": "+str(o.name))
		}
		r.SlowPaths = append(r.SlowPaths, row)
	}
	slices.SortFunc(r.SlowPaths, func(a, b SlowPath) int {
		if c := cmp.Compare(b.MsTotal, a.MsTotal); c != 0 {
			return c
		}
		return slices.Compare(a.Path, b.Path)
	})
	if m := 2 * opts.top(); len(r.SlowPaths) > m {
		r.SlowPaths = r.SlowPaths[:m]
	}

	// Slowest and long-lived traces, rebuilt in detail.
	for _, t := range ag.slow.t {
		r.SlowTraces = append(r.SlowTraces, traceDetail(tw, t, opts.maxTraceSpans()))
	}
	for i, t := range ag.longLived.t {
		tw.analyze(t)
		root := primaryRoot(tw)
		rn := &tw.nodes[root]
		row := LongLivedTrace{TraceID: st.traceIDs[t].String(), RootService: str(rn.svc), RootOperation: str(rn.sp.name),
			EntryOperation: str(tw.nodes[entrySpan(tw, root)].sp.name), DurationMs: ms(ag.longLived.d[i])}
		for _, x := range tw.preord[rn.pre : rn.pre+rn.size] {
			n := &tw.nodes[x]
			if !n.selfLong {
				continue
			}
			nf := tw.names.get(n.sp.name)
			if nf.long {
				row.Reason, row.Detail = nf.longReason, str(n.svc)+": "+str(n.sp.name)
			} else {
				row.Reason, row.Detail = "watch", st.attrInfo[n.sp.attrs].watchDetail
			}
			break
		}
		r.LongLived = append(r.LongLived, row)
	}

	// Errors.
	for i := range ag.ops {
		o := &ag.ops[i]
		if o.errors == 0 {
			continue
		}
		g := ErrorGroup{Service: str(o.svc), Name: str(o.name), Kind: kindNames[o.kind], Count: o.errors, Messages: []MessageCount{}}
		for m, c := range o.errMsgs {
			text := str(m)
			if text == "" {
				text = "(no message)"
			}
			g.Messages = append(g.Messages, MessageCount{Message: text, Count: c})
		}
		slices.SortFunc(g.Messages, func(a, b MessageCount) int {
			if c := cmp.Compare(b.Count, a.Count); c != 0 {
				return c
			}
			return cmp.Compare(a.Message, b.Message)
		})
		if len(g.Messages) > 5 {
			g.Messages = g.Messages[:5]
		}
		for _, t := range o.errEx {
			g.ExemplarTraceIDs = append(g.ExemplarTraceIDs, st.traceIDs[t].String())
		}
		r.Errors = append(r.Errors, g)
	}
	slices.SortFunc(r.Errors, func(a, b ErrorGroup) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmpOp(a.Service, a.Name, a.Kind, b.Service, b.Name, b.Kind)
	})

	buildKubernetes(r, st, ag)
	// Bound every table hostile input could make huge (one row per
	// distinct name); the rows kept are the first in each table's order.
	m := opts.maxOperations()
	r.Services = capRows(r.Services, m, "services", &truncated)
	r.Edges = capRows(r.Edges, m, "edges", &truncated)
	r.Loopback = capRows(r.Loopback, m, "loopback", &truncated)
	r.RootOperations = capRows(r.RootOperations, m, "root_operations", &truncated)
	r.Errors = capRows(r.Errors, m, "errors", &truncated)
	r.Kubernetes.APIServer = capRows(r.Kubernetes.APIServer, m, "kubernetes.apiserver", &truncated)
	r.Kubernetes.Etcd = capRows(r.Kubernetes.Etcd, m, "kubernetes.etcd", &truncated)
	r.Kubernetes.CRI = capRows(r.Kubernetes.CRI, m, "kubernetes.cri", &truncated)
	r.Kubernetes.Pods = capRows(r.Kubernetes.Pods, m, "kubernetes.pods", &truncated)
	r.Sources = buildSources(opts, st, ag)
	r.Warnings = buildWarnings(opts, r, st, asm, sk, tw, ag, in, truncated)
	return r
}

func capRows[T any](rows []T, m int, name string, truncated *[]string) []T {
	if len(rows) <= m {
		return rows
	}
	*truncated = append(*truncated, fmt.Sprintf("%s (%d of %d kept)", name, m, len(rows)))
	return rows[:m]
}

func cmpOp(s1, n1, k1, s2, n2, k2 string) int {
	if c := cmp.Compare(s1, s2); c != 0 {
		return c
	}
	if c := cmp.Compare(n1, n2); c != 0 {
		return c
	}
	return cmp.Compare(k1, k2)
}

func mergeShares(in []CriticalShare) []CriticalShare {
	idx := map[[2]string]int{}
	out := in[:0:0]
	for _, c := range in {
		k := [2]string{c.Service, c.Name}
		if i, ok := idx[k]; ok {
			out[i].MsTotal += c.MsTotal
			out[i].Share += c.Share
			continue
		}
		idx[k] = len(out)
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b CriticalShare) int { return cmp.Compare(b.MsTotal, a.MsTotal) })
	return out
}

func buildEdges(st *store, ss *seriesSet, m map[[2]int32]*edgeAgg) []Edge {
	out := []Edge{}
	for _, e := range m {
		row := Edge{
			ClientService: st.strs[e.client], ServerService: st.strs[e.server],
			Calls: e.calls, Errors: e.errors, LongLived: e.long,
			GapMs: ss.pct(e.gd), ClientMs: ss.pct(e.cd), ServerMs: ss.pct(e.sd),
			ClientMsTotal: ms(e.total), ExemplarTraceIDs: e.ex.ids(st), Operations: []EdgeOperation{},
		}
		for _, k := range e.rowKey {
			p := e.rows[k]
			row.Operations = append(row.Operations, EdgeOperation{
				ClientOperation: st.strs[k[0]], ServerOperation: st.strs[k[1]],
				Calls: p.calls, Errors: p.errors, LongLived: p.long,
				GapMs: ss.pct(p.gd), ClientMs: ss.pct(p.cd), ServerMs: ss.pct(p.sd),
			})
		}
		slices.SortFunc(row.Operations, func(a, b EdgeOperation) int {
			if c := cmp.Compare(b.Calls, a.Calls); c != 0 {
				return c
			}
			if c := cmp.Compare(a.ClientOperation, b.ClientOperation); c != 0 {
				return c
			}
			return cmp.Compare(a.ServerOperation, b.ServerOperation)
		})
		if len(row.Operations) > 50 {
			row.OperationsOmitted = len(row.Operations) - 50
			row.Operations = row.Operations[:50]
		}
		out = append(out, row)
	}
	slices.SortFunc(out, func(a, b Edge) int {
		if c := cmp.Compare(b.ClientMs.P99, a.ClientMs.P99); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ClientService, b.ClientService); c != 0 {
			return c
		}
		return cmp.Compare(a.ServerService, b.ServerService)
	})
	return out
}

// primaryRoot returns the longest root of the trace in tw (earliest start
// on ties, as roots are sorted by start).
func primaryRoot(tw *traceWork) int32 {
	primary := int32(-1)
	for _, r := range tw.roots {
		if primary < 0 || tw.nodes[r].dur() > tw.nodes[primary].dur() {
			primary = r
		}
	}
	return primary
}

// bottleneck returns the node with the most critical-path time under root
// (the deepest on ties).
func bottleneck(tw *traceWork, root int32) int32 {
	rn := &tw.nodes[root]
	b := root
	for _, x := range tw.preord[rn.pre : rn.pre+rn.size] {
		n := &tw.nodes[x]
		if n.cp > tw.nodes[b].cp || (n.cp == tw.nodes[b].cp && n.depth > tw.nodes[b].depth) {
			b = x
		}
	}
	return b
}

// traceDetail rebuilds trace t and renders its span tree.
func traceDetail(tw *traceWork, t int32, maxSpans int) Trace {
	st := tw.st
	tw.analyze(t)
	nodes := tw.nodes
	root := primaryRoot(tw)
	rn := &nodes[root]
	start := int64(1<<63 - 1)
	svcs := map[string]bool{}
	errs := 0
	for i := range nodes {
		start = min(start, nodes[i].start)
		svcs[st.strs[nodes[i].svc]] = true
		if nodes[i].sp.status == statusError {
			errs++
		}
	}
	b := bottleneck(tw, root)
	tr := Trace{
		TraceID: st.traceIDs[t].String(), RootService: st.strs[rn.svc], RootOperation: st.strs[rn.sp.name],
		EntryOperation: st.strs[nodes[entrySpan(tw, root)].sp.name],
		Start:          rfc3339(start), DurationMs: ms(rn.dur()), SpanCount: len(nodes), Errors: errs, Roots: len(tw.roots),
		Bottleneck: st.strs[nodes[b].svc] + ": " + st.strs[nodes[b].sp.name],
	}
	for s := range svcs {
		tr.Services = append(tr.Services, s)
	}
	slices.Sort(tr.Services)
	n := min(len(tw.preord), maxSpans)
	tr.SpansOmitted = len(tw.preord) - n
	tr.Spans = make([]TraceSpan, 0, n)
	for _, x := range tw.preord[:n] {
		nd := &nodes[x]
		sp := nd.sp
		ts := TraceSpan{
			SpanID: spanIDString(sp.id), Parent: -1, Depth: int(nd.depth),
			StartMs: ms(nd.start - start), DurationMs: ms(nd.dur()), SelfMs: ms(nd.self),
			Service: st.strs[nd.svc], Name: st.strs[sp.name], Kind: kindNames[sp.kind], Status: statusNames[sp.status],
			StatusMessage: st.strs[sp.msg], Critical: nd.cp > 0, CriticalMs: ms(nd.cp), LongLived: nd.long,
			Orphan: sp.flags&flagOrphan != 0, SkewMs: ms(tw.skew[st.res[sp.res].clock]), Links: int(sp.links),
		}
		if nd.par >= 0 {
			ts.Parent = int(nodes[nd.par].pre)
		}
		if sp.attrs != 0 {
			ts.Attributes = map[string]string{}
			for _, a := range st.attrSets[sp.attrs] {
				if name := attrNames[a.key]; name != "" {
					ts.Attributes[name] = st.strs[a.val]
				}
			}
		}
		tr.Spans = append(tr.Spans, ts)
	}
	return tr
}

func buildKubernetes(r *Result, st *store, ag *aggregator) {
	str := func(id int32) string { return st.strs[id] }
	k := &r.Kubernetes
	for _, g := range ag.apiList {
		k.APIServer = append(k.APIServer, APIRequestGroup{Verb: str(g.verb), Resource: str(g.resource), Count: g.count,
			Errors: g.errors, LongLived: g.long, Ms: ag.ss.pct(g.d), EtcdMsTotal: ms(g.etcdMs), EtcdCalls: g.etcdCalls})
	}
	slices.SortFunc(k.APIServer, func(a, b APIRequestGroup) int {
		if c := cmp.Compare(b.Ms.P99, a.Ms.P99); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Verb, b.Verb); c != 0 {
			return c
		}
		return cmp.Compare(a.Resource, b.Resource)
	})
	for _, g := range ag.etcd {
		k.Etcd = append(k.Etcd, EtcdGroup{Method: str(g.method), KeyPrefix: str(g.prefix), Calls: g.calls, Errors: g.errors,
			LongLived: g.long, ClientCalls: g.clientCalls, ClientMs: ag.ss.pct(g.cd), ServerMs: ag.ss.pct(g.sd), ServerCalls: g.serverCalls})
	}
	slices.SortFunc(k.Etcd, func(a, b EtcdGroup) int {
		if c := cmp.Compare(b.ClientMs.P99, a.ClientMs.P99); c != 0 {
			return c
		}
		if c := cmp.Compare(b.ServerMs.P99, a.ServerMs.P99); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Method, b.Method); c != 0 {
			return c
		}
		return cmp.Compare(a.KeyPrefix, b.KeyPrefix)
	})
	for _, g := range ag.cri {
		k.CRI = append(k.CRI, CRIGroup{Method: str(g.method), Runtime: str(g.runtime), Calls: g.calls, Errors: g.errors,
			ClientMs: ag.ss.pct(g.cd), ServerMs: ag.ss.pct(g.sd), ServerCalls: g.serverCalls})
	}
	slices.SortFunc(k.CRI, func(a, b CRIGroup) int {
		if c := cmp.Compare(b.ClientMs.P99, a.ClientMs.P99); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Method, b.Method); c != 0 {
			return c
		}
		return cmp.Compare(a.Runtime, b.Runtime)
	})
	for _, g := range ag.podList {
		k.Pods = append(k.Pods, PodGroup{Namespace: str(g.ns), Pod: str(g.pod), Syncs: g.syncs, Errors: g.errors,
			Ms: ag.ss.pct(g.d), CRICalls: g.criCalls, CRIMsTotal: ms(g.criMs)})
	}
	slices.SortFunc(k.Pods, func(a, b PodGroup) int {
		if c := cmp.Compare(b.Ms.Max, a.Ms.Max); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return cmp.Compare(a.Pod, b.Pod)
	})
}

func buildSources(opts *Options, st *store, ag *aggregator) []Source {
	out := []Source{}
	perSvc := map[string]int64{}
	for id, sv := range ag.svcs {
		perSvc[st.strs[id]] += sv.spans
	}
	for _, si := range opts.Sources {
		svcs := slices.Clone(si.Services)
		if len(svcs) == 0 {
			svcs = []string{si.Name}
		}
		slices.Sort(svcs)
		row := Source{Name: si.Name, Services: svcs, ReceivedSpans: si.ReceivedSpans, Note: si.Note}
		for _, s := range svcs {
			row.AnalyzedSpans += perSvc[s]
		}
		row.SentNothing = row.AnalyzedSpans == 0
		for reason, n := range si.Dropped {
			if n > 0 {
				if row.Dropped == nil {
					row.Dropped = map[string]int64{}
				}
				row.Dropped[reason] += n
			}
		}
		out = append(out, row)
	}
	slices.SortFunc(out, func(a, b Source) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// topList renders the n largest counts of m as "key (count)".
func topList[K comparable](m map[K]int64, label func(K) string, n int) string {
	type kc struct {
		k string
		c int64
	}
	var l []kc
	for k, c := range m {
		l = append(l, kc{label(k), c})
	}
	slices.SortFunc(l, func(a, b kc) int {
		if c := cmp.Compare(b.c, a.c); c != 0 {
			return c
		}
		return cmp.Compare(a.k, b.k)
	})
	var parts []string
	for i, x := range l {
		if i == n {
			parts = append(parts, fmt.Sprintf("and %d more", len(l)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%d)", x.k, x.c))
	}
	return strings.Join(parts, ", ")
}
