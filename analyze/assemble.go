package analyze

import "slices"

// assembly is the output of the assemble pass: every span placed in its
// trace, duplicates marked, parents linked.
type assembly struct {
	// order holds span indices grouped by trace; trace t occupies
	// order[off[t]:off[t+1]], sorted by span id (arrival order among equal
	// ids).
	order []int32
	off   []int32
	// parent holds, per position in order, the position of the span's
	// parent, or -1 for a root (no parent id, parent not found, or link cut
	// to break a cycle). Duplicates have -1 and flagDup.
	parent []int32

	// By-products collected while each trace is hot in cache, so later
	// passes need no sweep of their own: positions of the spans whose
	// parent is a CLIENT span on another clock domain while they are SERVER
	// spans (skew samples); lone kube-apiserver authentication spans and the
	// SERVER spans not under an authentication span (span indices, for
	// joinLoneAuthentication).
	cross       []int32
	loneAuth    []int32
	authServers []int32

	spans     int64 // spans kept (not duplicates)
	dups      int64 // duplicates removed (identical or not)
	conflicts int64 // duplicates whose content differed from the kept span
	orphans   int64 // spans with a parent id that is not in their trace
	cycles    int64 // parent links cut to break cycles
	selfLinks int64 // spans naming themselves as parent (counted as orphans too)
}

// assemble groups spans into traces, removes duplicates and links parents.
//
// Invariant: afterwards every non-duplicate span has exactly one position
// in order, within its trace's range; parent[p] is -1 or the position of a
// non-duplicate span of the same trace; following parent links from any
// position ends at a root (no cycles). Of spans sharing (trace id, span id)
// the last one read is kept, the others get flagDup. Orphans keep
// flagOrphan and become roots. Nothing is ever dropped silently: every
// removed or relinked span is counted.
func assemble(st *store, ar *arena) *assembly {
	nt := len(st.traceIDs)
	a := &assembly{
		order:  arenaAlloc[int32](ar, st.n),
		off:    arenaAlloc[int32](ar, nt+1),
		parent: arenaAlloc[int32](ar, st.n),
	}
	if a.off == nil {
		a.off = []int32{0}
	}
	// Counting sort by trace index: O(n), arrival order kept within a trace.
	for _, c := range st.chunks {
		for i := range c {
			a.off[c[i].trace+1]++
		}
	}
	for t := 1; t <= nt; t++ {
		a.off[t] += a.off[t-1]
	}
	next := arenaAlloc[int32](ar, nt)
	copy(next, a.off[:nt])
	idx := int32(0)
	for _, c := range st.chunks {
		for i := range c {
			t := c[i].trace
			a.order[next[t]] = idx
			next[t]++
			idx++
		}
	}
	next = nil

	auth, hasAuth := st.strIdx["authentication"]
	if !hasAuth {
		auth = -1
	}
	var state []uint8
	var ids []idEntry
	for t := 0; t < nt; t++ {
		lo, hi := a.off[t], a.off[t+1]
		seg := a.order[lo:hi]
		if cap(ids) < len(seg) {
			ids = make([]idEntry, len(seg), 2*len(seg))
			state = make([]uint8, len(seg), 2*len(seg))
		}
		ids = ids[:len(seg)]
		sortByID(st, seg, ids)
		a.dedupe(st, seg, ids)
		a.link(st, seg, ids, lo)
		a.breakCycles(st, seg, lo, state[:len(seg)])
		a.collect(st, ar, seg, lo, auth)
	}
	return a
}

// collect records the by-products of one linked trace.
func (a *assembly) collect(st *store, ar *arena, seg []int32, lo, auth int32) {
	kept, last := 0, int32(-1)
	for i, si := range seg {
		sp := st.span(si)
		if sp.flags&flagDup != 0 {
			continue
		}
		kept++
		last = si
		if sp.kind != kindServer {
			continue
		}
		p := a.parent[lo+int32(i)]
		if p < 0 {
			if auth >= 0 {
				a.authServers = arenaAppend(ar, a.authServers, si)
			}
			continue
		}
		ps := st.span(a.order[p])
		if auth >= 0 && ps.name != auth {
			a.authServers = arenaAppend(ar, a.authServers, si)
		}
		if ps.kind == kindClient && st.res[ps.res].clock != st.res[sp.res].clock {
			a.cross = arenaAppend(ar, a.cross, lo+int32(i))
		}
	}
	if kept == 1 && auth >= 0 {
		if sp := st.span(last); sp.name == auth && sp.kind == kindInternal && sp.flags&flagHasParent == 0 {
			a.loneAuth = arenaAppend(ar, a.loneAuth, last)
		}
	}
}

// idEntry is a span id with its span index: assembly sorts and searches
// these compact pairs instead of reaching into the span store each time.
type idEntry struct {
	id int64
	si int32
}

// sortByID sorts a trace's span indices by span id, then by arrival,
// filling ids (len(seg)) with the sorted pairs.
func sortByID(st *store, seg []int32, ids []idEntry) {
	for i, si := range seg {
		ids[i] = idEntry{st.span(si).id, si}
	}
	less := func(a, b idEntry) bool { return a.id < b.id || (a.id == b.id && a.si < b.si) }
	if len(ids) <= 16 {
		for i := 1; i < len(ids); i++ {
			v := ids[i]
			j := i
			for j > 0 && less(v, ids[j-1]) {
				ids[j] = ids[j-1]
				j--
			}
			ids[j] = v
		}
	} else {
		slices.SortFunc(ids, func(a, b idEntry) int {
			if less(a, b) {
				return -1
			}
			if less(b, a) {
				return 1
			}
			return 0
		})
	}
	for i := range ids {
		seg[i] = ids[i].si
	}
}

func sameContent(x, y *span) bool {
	return x.parent == y.parent && x.start == y.start && x.end == y.end && x.name == y.name &&
		x.res == y.res && x.attrs == y.attrs && x.msg == y.msg && x.kind == y.kind &&
		x.status == y.status && x.links == y.links
}

// dedupe marks all but the last of each run of equal span ids.
func (a *assembly) dedupe(st *store, seg []int32, ids []idEntry) {
	for i := 0; i+1 < len(seg); i++ {
		if ids[i].id == ids[i+1].id {
			cur, nxt := st.span(seg[i]), st.span(seg[i+1])
			cur.flags |= flagDup
			a.dups++
			if !sameContent(cur, nxt) {
				a.conflicts++
			}
		}
	}
}

// link resolves parent ids to positions by binary search in the sorted
// segment (landing on the kept, last span of a run of duplicates).
func (a *assembly) link(st *store, seg []int32, ids []idEntry, lo int32) {
	for i, si := range seg {
		sp := st.span(si)
		a.parent[lo+int32(i)] = -1
		if sp.flags&flagDup != 0 {
			continue
		}
		a.spans++
		if sp.flags&flagHasParent == 0 {
			continue
		}
		if sp.parent == sp.id {
			a.selfLinks++
			a.orphans++
			sp.flags |= flagOrphan
			continue
		}
		// The last index whose id is <= parent: the kept span of a run.
		lo2, hi2 := 0, len(ids)
		for lo2 < hi2 {
			m := int(uint(lo2+hi2) >> 1)
			if ids[m].id > sp.parent {
				hi2 = m
			} else {
				lo2 = m + 1
			}
		}
		j := lo2 - 1
		if j < 0 || ids[j].id != sp.parent {
			a.orphans++
			sp.flags |= flagOrphan
			continue
		}
		a.parent[lo+int32(i)] = lo + int32(j)
	}
}

// breakCycles cuts the parent link of one span in every cycle so that all
// parent chains end at a root. state is scratch of len(seg): 0 unvisited,
// 1 on the current chain, 2 done.
func (a *assembly) breakCycles(st *store, seg []int32, lo int32, state []uint8) {
	clear(state)
	for i := range seg {
		if state[i] != 0 {
			continue
		}
		// Walk up marking the chain; stop at a root or a done node, or
		// detect a cycle when meeting the chain itself.
		j := int32(i)
		for {
			state[j] = 1
			p := a.parent[lo+j]
			if p < 0 {
				break
			}
			pj := p - lo
			if state[pj] == 2 {
				break
			}
			if state[pj] == 1 {
				// Cycle: cut the link of the span at which it closed.
				a.parent[lo+j] = -1
				st.span(seg[j]).flags |= flagCycle
				a.cycles++
				break
			}
			j = pj
		}
		// Mark the chain done.
		j = int32(i)
		for j >= 0 && state[j] == 1 {
			state[j] = 2
			p := a.parent[lo+j]
			if p < 0 {
				break
			}
			j = p - lo
		}
	}
}
