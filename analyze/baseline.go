package analyze

import (
	"cmp"
	"slices"
	"strings"
)

// diffBaseline compares cur with base per edge, operation and slow path.
//
// Invariant: every key present in either Result appears exactly once, with
// Status "both", "new" or "gone"; deltas are current minus baseline on the
// nearest-rank percentiles each Result already holds (no re-computation).
// Slower rows (larger p99 increase) sort first.
func diffBaseline(base, cur *Result, label string) *BaselineDiff {
	d := &BaselineDiff{Label: label, Spans: base.Summary.Spans, Traces: base.Summary.Traces,
		Edges: []EdgeChange{}, Operations: []OperationChange{}, Paths: []PathChange{}}

	type edgeKey struct{ c, s string }
	be := map[edgeKey]*Edge{}
	for i := range base.Edges {
		e := &base.Edges[i]
		be[edgeKey{e.ClientService, e.ServerService}] = e
	}
	seen := map[edgeKey]bool{}
	for i := range cur.Edges {
		e := &cur.Edges[i]
		k := edgeKey{e.ClientService, e.ServerService}
		seen[k] = true
		row := EdgeChange{ClientService: k.c, ServerService: k.s}
		if b := be[k]; b != nil {
			row.Client = change(b.Calls, b.ClientMs, e.Calls, e.ClientMs)
			row.Server = change(b.Calls, b.ServerMs, e.Calls, e.ServerMs)
		} else {
			row.Client = change(0, Percentiles{}, e.Calls, e.ClientMs)
			row.Server = change(0, Percentiles{}, e.Calls, e.ServerMs)
		}
		d.Edges = append(d.Edges, row)
	}
	for k, b := range be {
		if !seen[k] {
			d.Edges = append(d.Edges, EdgeChange{ClientService: k.c, ServerService: k.s,
				Client: change(b.Calls, b.ClientMs, 0, Percentiles{}), Server: change(b.Calls, b.ServerMs, 0, Percentiles{})})
		}
	}
	slices.SortFunc(d.Edges, func(a, b EdgeChange) int {
		if c := cmpChange(&a.Client, &b.Client); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ClientService, b.ClientService); c != 0 {
			return c
		}
		return cmp.Compare(a.ServerService, b.ServerService)
	})

	type opKey struct{ s, n, k string }
	bo := map[opKey]*Operation{}
	for i := range base.Operations {
		o := &base.Operations[i]
		bo[opKey{o.Service, o.Name, o.Kind}] = o
	}
	seenOp := map[opKey]bool{}
	for i := range cur.Operations {
		o := &cur.Operations[i]
		k := opKey{o.Service, o.Name, o.Kind}
		seenOp[k] = true
		row := OperationChange{Service: k.s, Name: k.n, Kind: k.k}
		if b := bo[k]; b != nil {
			row.Change = change(b.Count-b.LongLived, b.Ms, o.Count-o.LongLived, o.Ms)
		} else {
			row.Change = change(0, Percentiles{}, o.Count-o.LongLived, o.Ms)
		}
		d.Operations = append(d.Operations, row)
	}
	for k, b := range bo {
		if !seenOp[k] {
			d.Operations = append(d.Operations, OperationChange{Service: k.s, Name: k.n, Kind: k.k,
				Change: change(b.Count-b.LongLived, b.Ms, 0, Percentiles{})})
		}
	}
	slices.SortFunc(d.Operations, func(a, b OperationChange) int {
		if c := cmpChange(&a.Change, &b.Change); c != 0 {
			return c
		}
		return cmpOp(a.Service, a.Name, a.Kind, b.Service, b.Name, b.Kind)
	})

	bp := map[string]*SlowPath{}
	for i := range base.SlowPaths {
		p := &base.SlowPaths[i]
		bp[strings.Join(p.Path, "\x00")] = p
	}
	seenPath := map[string]bool{}
	for i := range cur.SlowPaths {
		p := &cur.SlowPaths[i]
		k := strings.Join(p.Path, "\x00")
		seenPath[k] = true
		row := PathChange{Path: p.Path}
		if b := bp[k]; b != nil {
			row.Change = change(b.Traces, b.Ms, p.Traces, p.Ms)
		} else {
			row.Change = change(0, Percentiles{}, p.Traces, p.Ms)
		}
		d.Paths = append(d.Paths, row)
	}
	for k, b := range bp {
		if !seenPath[k] {
			d.Paths = append(d.Paths, PathChange{Path: b.Path, Change: change(b.Traces, b.Ms, 0, Percentiles{})})
		}
	}
	slices.SortFunc(d.Paths, func(a, b PathChange) int {
		if c := cmpChange(&a.Change, &b.Change); c != 0 {
			return c
		}
		return slices.Compare(a.Path, b.Path)
	})
	return d
}

func change(bn int64, bp Percentiles, n int64, p Percentiles) Change {
	c := Change{BaseCount: bn, Count: n, BaseMs: bp, Ms: p}
	switch {
	case bn > 0 && n > 0:
		c.Status = "both"
		c.DeltaP50Ms, c.DeltaP90Ms, c.DeltaP99Ms = p.P50-bp.P50, p.P90-bp.P90, p.P99-bp.P99
		if bp.P50 > 0 && p.P50 > 0 {
			c.RatioP50 = p.P50 / bp.P50
		}
	case n > 0:
		c.Status = "new"
	default:
		c.Status = "gone"
	}
	return c
}

var statusOrder = map[string]int{"both": 0, "new": 1, "gone": 2}

func cmpChange(a, b *Change) int {
	if c := cmp.Compare(statusOrder[a.Status], statusOrder[b.Status]); c != 0 {
		return c
	}
	if c := cmp.Compare(b.DeltaP99Ms, a.DeltaP99Ms); c != 0 {
		return c
	}
	return cmp.Compare(b.Count, a.Count)
}
