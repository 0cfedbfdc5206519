package analyze

import (
	"cmp"
	"slices"
)

// node is one span of the trace being worked on, with everything the
// per-trace passes compute. Local indices (par, kids, *Anc) refer to
// traceWork.nodes.
type node struct {
	sp         *span
	par        int32 // local parent, -1 for a root
	start, end int64 // skew-adjusted times
	ss, se     int64 // sanitized times (critical path)
	dropped    bool  // outside its parent (or under a dropped span): not on any critical path
	selfLong   bool  // long-lived by its own name or attributes
	long       bool  // long-lived itself or an ancestor of a long-lived span
	overflow   bool  // not inside its parent's interval
	hasServer  bool  // has a SERVER child (CLIENT spans)
	kid0, kidN int32 // children in kids[kid0:kidN] (by start) and kidsEnd (by sanitized end, desc)
	ptr        int32 // critical path walk cursor into kidsEnd
	depth      int32
	pre        int32 // preorder index
	size       int32 // subtree size (nodes)
	self       int64 // self time
	cp         int64 // time on the critical path
	svc        int32
	op         int32 // operation index (aggregator)
	verbAnc    int32 // nearest ancestor-or-self with a "verb" attribute, -1
	keyAnc     int32 // nearest ancestor-or-self with a "key" attribute, -1
	podAnc     int32 // nearest ancestor-or-self kubelet pod span, -1
	serverAnc  int32 // nearest ancestor-or-self SERVER span, -1
	grp        int32 // Kubernetes group index of a verb or pod node
}

func (n *node) dur() int64 { return n.end - n.start }

// traceWork holds scratch space reused from trace to trace.
type traceWork struct {
	st    *store
	a     *assembly
	skew  []int64
	names *nameFacts

	t       int32
	nodes   []node
	loc     []int32
	kids    []int32
	kidsEnd []int32
	preord  []int32
	roots   []int32
	stack   []int32
}

// build loads trace t: nodes for its non-duplicate spans with skew-adjusted
// times, children lists sorted by start, roots sorted by start, preorder.
//
// Invariant: every node is reachable from exactly one root (assemble broke
// cycles), preord lists every node once, parents before children.
func (tw *traceWork) build(t int32) {
	tw.t = t
	lo, hi := tw.a.off[t], tw.a.off[t+1]
	seg := tw.a.order[lo:hi]
	tw.nodes = tw.nodes[:0]
	if cap(tw.loc) < len(seg) {
		tw.loc = make([]int32, len(seg)*2)
	}
	loc := tw.loc[:len(seg)]
	for i, si := range seg {
		sp := tw.st.span(si)
		if sp.flags&flagDup != 0 {
			loc[i] = -1
			continue
		}
		loc[i] = int32(len(tw.nodes))
		off := tw.skew[tw.st.res[sp.res].clock]
		tw.nodes = append(tw.nodes, node{
			sp: sp, par: -1, start: sp.start + off, end: sp.end + off,
			svc: tw.st.res[sp.res].service, verbAnc: -1, keyAnc: -1, podAnc: -1, serverAnc: -1, grp: -1,
		})
	}
	nodes := tw.nodes
	j := 0
	for i := range seg {
		if loc[i] < 0 {
			continue
		}
		if p := tw.a.parent[lo+int32(i)]; p >= 0 {
			nodes[j].par = loc[p-lo]
		}
		j++
	}
	// Children (CSR): count, prefix, fill.
	n := int32(len(nodes))
	for i := range nodes {
		nodes[i].kid0, nodes[i].kidN = 0, 0
	}
	for i := range nodes {
		if p := nodes[i].par; p >= 0 {
			nodes[p].kidN++
		}
	}
	var sum int32
	for i := range nodes {
		c := nodes[i].kidN
		nodes[i].kid0 = sum
		nodes[i].kidN = sum // fill pointer
		sum += c
	}
	tw.kids = grow(tw.kids, int(sum))
	tw.roots = tw.roots[:0]
	for i := int32(0); i < n; i++ {
		if p := nodes[i].par; p >= 0 {
			tw.kids[nodes[p].kidN] = i
			nodes[p].kidN++
		} else {
			tw.roots = append(tw.roots, i)
		}
	}
	byStart := func(x, y int32) int {
		a, b := &nodes[x], &nodes[y]
		if c := cmp.Compare(a.start, b.start); c != 0 {
			return c
		}
		if c := cmp.Compare(a.end, b.end); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	}
	for i := range nodes {
		if k := tw.kids[nodes[i].kid0:nodes[i].kidN]; len(k) > 1 {
			sortSmall(k, byStart)
		}
	}
	sortSmall(tw.roots, byStart)

	// Preorder (iterative DFS, children in start order).
	tw.preord = tw.preord[:0]
	tw.stack = tw.stack[:0]
	for i := len(tw.roots) - 1; i >= 0; i-- {
		tw.stack = append(tw.stack, tw.roots[i])
	}
	for len(tw.stack) > 0 {
		x := tw.stack[len(tw.stack)-1]
		tw.stack = tw.stack[:len(tw.stack)-1]
		nodes[x].pre = int32(len(tw.preord))
		tw.preord = append(tw.preord, x)
		k := tw.kids[nodes[x].kid0:nodes[x].kidN]
		for i := len(k) - 1; i >= 0; i-- {
			tw.stack = append(tw.stack, k[i])
		}
	}
	// Subtree sizes, bottom-up.
	for i := len(tw.preord) - 1; i >= 0; i-- {
		x := tw.preord[i]
		nodes[x].size++
		if p := nodes[x].par; p >= 0 {
			nodes[p].size += nodes[x].size
		}
	}
}

func grow(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n, n*2)
	}
	return s[:n]
}

// sortSmall sorts with insertion sort for short slices, pdqsort otherwise.
func sortSmall(s []int32, less func(a, b int32) int) {
	if len(s) > 12 {
		slices.SortFunc(s, less)
		return
	}
	for i := 1; i < len(s); i++ {
		v := s[i]
		j := i
		for j > 0 && less(s[j-1], v) > 0 {
			s[j] = s[j-1]
			j--
		}
		s[j] = v
	}
}

// classify marks long-lived spans and computes depth and the nearest
// ancestors the Kubernetes passes need.
//
// Invariant: a node is long-lived when its own name or attributes say it
// is a watch or stream (selfLong, including lone kube-apiserver
// authentication spans joined to a watch by joinLoneAuthentication), when
// any descendant is long-lived — a request that carries a watch lasts as
// long as the watch — or when it covers at least half of a long-lived
// parent. Everything else is a normal request whose duration is a latency.
func (tw *traceWork) classify() {
	nodes := tw.nodes
	st := tw.st
	for _, x := range tw.preord {
		n := &nodes[x]
		sp := n.sp
		nf := tw.names.get(sp.name)
		n.selfLong = nf.long || st.attrInfo[sp.attrs].watch || sp.flags&flagLong != 0
		n.long = n.selfLong
		p := n.par
		if p >= 0 {
			pn := &nodes[p]
			n.depth = pn.depth + 1
			n.verbAnc, n.keyAnc, n.podAnc, n.serverAnc = pn.verbAnc, pn.keyAnc, pn.podAnc, pn.serverAnc
		}
		if sp.attrs != 0 {
			for _, a := range st.attrSets[sp.attrs] {
				switch a.key {
				case attrVerb:
					n.verbAnc = x
				case attrKey:
					n.keyAnc = x
				case attrK8sPodName:
					if nf.podSync {
						n.podAnc = x
					}
				}
			}
		}
		if sp.kind == kindServer {
			n.serverAnc = x
			if p >= 0 && nodes[p].sp.kind == kindClient {
				nodes[p].hasServer = true
			}
		}
	}
	for i := len(tw.preord) - 1; i >= 0; i-- {
		x := tw.preord[i]
		if nodes[x].long {
			if p := nodes[x].par; p >= 0 {
				nodes[p].long = true
			}
		}
	}
	// A span covering at least half of a long-lived parent is part of the
	// stream (the filter spans under a watch's SERVER span).
	for _, x := range tw.preord {
		n := &nodes[x]
		if p := n.par; p >= 0 && !n.long && nodes[p].long && 2*n.dur() >= nodes[p].dur() {
			n.long = true
		}
	}
}

// selfTimes computes each node's self time: its duration minus the union
// of its children's intervals clipped to it.
//
// Invariant: 0 <= self <= duration; the self times of a subtree never sum
// to more than the subtree root's duration plus the parts of descendants
// that overflow their parents.
func (tw *traceWork) selfTimes() {
	nodes := tw.nodes
	for i := range nodes {
		n := &nodes[i]
		covered := int64(0)
		curS, curE := int64(0), int64(0)
		open := false
		for _, k := range tw.kids[n.kid0:n.kidN] {
			c := &nodes[k]
			s, e := max(c.start, n.start), min(c.end, n.end)
			if e <= s {
				continue
			}
			if !open {
				curS, curE, open = s, e, true
				continue
			}
			if s > curE {
				covered += curE - curS
				curS, curE = s, e
			} else if e > curE {
				curE = e
			}
		}
		if open {
			covered += curE - curS
		}
		n.self = n.dur() - covered
	}
}

// criticalPath computes each node's time on its root's critical path with
// Jaeger's algorithm: children that overflow their parent are truncated to
// it, children entirely outside it (and their subtrees) and non-blocking
// children (PRODUCER, CONSUMER) are dropped; then from the root the walk
// repeatedly descends into the last-finishing child, and on the way back
// up picks the child that finished last before the returning child
// started; whatever is not covered by such a child is critical time of the
// span itself.
//
// Invariant: the critical sections of one root tile its (sanitized)
// interval exactly, so the cp of a root's subtree sums to the root's
// duration. Each child is entered at most once: O(n log n) per trace.
func (tw *traceWork) criticalPath() {
	nodes := tw.nodes
	// Sanitize top-down.
	for _, x := range tw.preord {
		n := &nodes[x]
		n.cp = 0
		p := n.par
		if p < 0 {
			n.ss, n.se, n.dropped = n.start, n.end, false
			continue
		}
		pn := &nodes[p]
		n.overflow = n.start < pn.start || n.end > pn.end
		k := n.sp.kind
		if pn.dropped || k == kindProducer || k == kindConsumer {
			n.dropped = true
			continue
		}
		n.dropped = false
		s, e := n.start, n.end
		if s >= pn.ss {
			if s >= pn.se {
				n.dropped = true
				continue
			}
			e = min(e, pn.se)
		} else {
			if e <= pn.ss {
				n.dropped = true
				continue
			}
			s, e = pn.ss, min(e, pn.se)
		}
		n.ss, n.se = s, e
	}
	// Children by sanitized end, descending; dropped ones last.
	tw.kidsEnd = grow(tw.kidsEnd, len(tw.kids))
	copy(tw.kidsEnd, tw.kids)
	byEnd := func(x, y int32) int {
		a, b := &nodes[x], &nodes[y]
		if a.dropped != b.dropped {
			if a.dropped {
				return 1
			}
			return -1
		}
		if c := cmp.Compare(b.se, a.se); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ss, b.ss); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	}
	for i := range nodes {
		nodes[i].ptr = nodes[i].kid0
		if k := tw.kidsEnd[nodes[i].kid0:nodes[i].kidN]; len(k) > 1 {
			sortSmall(k, byEnd)
		}
	}
	for _, r := range tw.roots {
		cur := r
		bound, bounded := int64(0), false
		for {
			n := &nodes[cur]
			end := n.se
			if bounded {
				end = bound
			}
			// Last-finishing child that ends before the bound.
			lfc := int32(-1)
			for n.ptr < n.kidN {
				c := tw.kidsEnd[n.ptr]
				cn := &nodes[c]
				if cn.dropped {
					n.ptr = n.kidN
					break
				}
				n.ptr++
				if !bounded || cn.se < bound {
					lfc = c
					break
				}
			}
			if lfc >= 0 {
				n.cp += end - nodes[lfc].se
				cur, bounded = lfc, false
				continue
			}
			n.cp += end - n.ss
			if cur == r {
				break
			}
			bound, bounded = n.ss, true
			cur = n.par
		}
	}
}
