package analyze

import (
	"cmp"
	"slices"
)

// skewPair collects, for one unordered pair of clock domains (a < b), the
// offsets that would make each CLIENT→SERVER span pair between them
// consistent, expressed as "add o to b's clock".
type skewPair struct {
	lo, hi     []int64 // per sample: the interval of consistent offsets
	violations int64   // samples inconsistent at offset 0
	inverted   int64   // samples that no offset can fix (server longer than client)
}

// skewResult is the output of the skew pass.
type skewResult struct {
	applied []int64 // per clock domain: offset added to its timestamps
	rows    []ClockSkew
	capped  int
	moved   int // hosts with a non-zero applied offset
}

// estimateSkew estimates a clock offset per clock domain (host) from the
// CLIENT→SERVER span pairs that cross domains.
//
// Invariant: a server span must lie inside its client parent. For each
// pair the offsets o (added to the server's clock) satisfying
// client.start <= server.start+o and server.end+o <= client.end form an
// interval; the estimate for two domains is the point covered by the most
// intervals that is nearest to zero (zero whenever most pairs are already
// consistent). Domains are then joined along a maximum spanning tree (by
// pair count) rooted at the domain with most spans; each domain's offset is
// relative to its tree parent, accumulated from the root, and applied
// clamped to ±cap (cap 0: estimate only). Every domain gets a row, whether
// or not it moved.
func estimateSkew(st *store, a *assembly, ar *arena, capNs int64) *skewResult {
	nh := len(st.hosts)
	pairs := map[[2]int32]*skewPair{}
	for _, pos := range a.cross {
		s := st.span(a.order[pos])
		c := st.span(a.order[a.parent[pos]])
		hc, hs := st.res[c.res].clock, st.res[s.res].clock
		lo, hi := c.start-s.start, c.end-s.end // offsets for the server's clock
		x, y := hc, hs
		if x > y { // normalize to "add to the larger index": negate
			x, y = y, x
			lo, hi = -hi, -lo
		}
		k := [2]int32{x, y}
		p := pairs[k]
		if p == nil {
			p = &skewPair{}
			pairs[k] = p
		}
		if lo > 0 || hi < 0 {
			p.violations++
		}
		if lo > hi {
			p.inverted++
			continue
		}
		p.lo = arenaAppend(ar, p.lo, lo)
		p.hi = arenaAppend(ar, p.hi, hi)
	}

	// Spans per host, for the choice of reference.
	spansPerHost := make([]int64, nh)
	servicesOf := make([]map[int32]bool, nh)
	for _, r := range st.res {
		if servicesOf[r.clock] == nil {
			servicesOf[r.clock] = map[int32]bool{}
		}
		servicesOf[r.clock][r.service] = true
	}
	for i, r := range st.res {
		spansPerHost[r.clock] += st.resSpans[i]
	}

	keys := make([][2]int32, 0, len(pairs))
	est := map[[2]int32]int64{}
	for k, p := range pairs {
		keys = append(keys, k)
		est[k] = coverageEstimate(p.lo, p.hi)
	}
	slices.SortFunc(keys, func(x, y [2]int32) int {
		if c := cmp.Compare(x[0], y[0]); c != 0 {
			return c
		}
		return cmp.Compare(x[1], y[1])
	})
	samples := func(k [2]int32) int64 { p := pairs[k]; return int64(len(p.lo)) + p.inverted }

	// Maximum spanning forest by pair count (Kruskal), then from each
	// component's reference host (most spans) offsets accumulate along the
	// tree.
	order := slices.Clone(keys)
	slices.SortStableFunc(order, func(x, y [2]int32) int { return cmp.Compare(samples(y), samples(x)) })
	uf := make([]int32, nh)
	for i := range uf {
		uf[i] = int32(i)
	}
	var find func(int32) int32
	find = func(x int32) int32 {
		for uf[x] != x {
			uf[x] = uf[uf[x]]
			x = uf[x]
		}
		return x
	}
	adj := make([][][2]int32, nh) // host -> tree edges (key) touching it
	for _, k := range order {
		a, b := find(k[0]), find(k[1])
		if a == b {
			continue
		}
		uf[a] = b
		adj[k[0]] = append(adj[k[0]], k)
		adj[k[1]] = append(adj[k[1]], k)
	}
	hostName := func(h int32) string { return st.strs[st.hosts[h]] }
	in := make([]bool, nh)
	off := make([]int64, nh)
	ref := make([]int32, nh)
	via := make([][2]int32, nh)
	for i := range ref {
		ref[i] = -1
	}
	byWeight := make([]int32, nh)
	for i := range byWeight {
		byWeight[i] = int32(i)
	}
	slices.SortFunc(byWeight, func(x, y int32) int {
		if c := cmp.Compare(spansPerHost[y], spansPerHost[x]); c != 0 {
			return c
		}
		return cmp.Compare(hostName(x), hostName(y))
	})
	var queue []int32
	for _, root := range byWeight {
		if in[root] {
			continue
		}
		in[root] = true
		queue = append(queue[:0], root)
		for len(queue) > 0 {
			h := queue[0]
			queue = queue[1:]
			for _, k := range adj[h] {
				e := est[k]
				if k[0] == h && !in[k[1]] { // place k[1]: add e relative to k[0]
					off[k[1]], ref[k[1]], via[k[1]], in[k[1]] = off[h]+e, h, k, true
					queue = append(queue, k[1])
				} else if k[1] == h && !in[k[0]] {
					off[k[0]], ref[k[0]], via[k[0]], in[k[0]] = off[h]-e, h, k, true
					queue = append(queue, k[0])
				}
			}
		}
	}

	res := &skewResult{applied: make([]int64, nh)}
	for h := int32(0); h < int32(nh); h++ {
		row := ClockSkew{Host: hostName(h), EstimatedMs: ms(off[h])}
		for svc := range servicesOf[h] {
			row.Services = append(row.Services, st.strs[svc])
		}
		slices.Sort(row.Services)
		if ref[h] >= 0 {
			p := pairs[via[h]]
			row.Reference = hostName(ref[h])
			row.Pairs = int64(len(p.lo)) + p.inverted
			row.Violations = p.violations
		}
		applied := off[h]
		switch {
		case capNs <= 0:
			applied = 0
		case applied > capNs:
			applied, row.Capped = capNs, true
		case applied < -capNs:
			applied, row.Capped = -capNs, true
		}
		if row.Capped {
			res.capped++
		}
		if applied != 0 {
			res.moved++
		}
		res.applied[h] = applied
		row.AppliedMs = ms(applied)
		res.rows = append(res.rows, row)
	}
	slices.SortFunc(res.rows, func(x, y ClockSkew) int { return cmp.Compare(x.Host, y.Host) })
	return res
}

// coverageEstimate returns the point covered by the most closed intervals
// [lo[i], hi[i]], choosing among such points the one nearest to zero. Zero
// for no intervals.
func coverageEstimate(lo, hi []int64) int64 {
	if len(lo) == 0 {
		return 0
	}
	// Sort the opening and the closing ends separately, then sweep: at an
	// equal coordinate openings come first (the intervals are closed).
	los, his := slices.Clone(lo), slices.Clone(hi)
	tmp := make([]int64, len(lo))
	sortInt64s(los, tmp)
	sortInt64s(his, tmp)
	best, cur := 0, 0
	var bestPoint int64
	bestDist := int64(-1)
	i, j := 0, 0
	for i < len(los) {
		if his[j] < los[i] {
			cur--
			j++
			continue
		}
		x := los[i]
		cur++
		i++
		// [x, next event] is covered by cur intervals.
		next := his[j]
		if i < len(los) && los[i] < next {
			next = los[i]
		}
		pt := nearestZero(x, next)
		d := absInt(pt)
		if cur > best || (cur == best && d < bestDist) {
			best, bestPoint, bestDist = cur, pt, d
		}
	}
	return bestPoint
}

func nearestZero(lo, hi int64) int64 {
	switch {
	case lo > 0:
		return lo
	case hi < 0:
		return hi
	}
	return 0
}

func absInt(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// ms converts nanoseconds to milliseconds.
func ms(ns int64) float64 { return float64(ns) / 1e6 }
