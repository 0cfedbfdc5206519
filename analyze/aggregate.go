package analyze

import (
	"strconv"
)

// opAgg aggregates one (service, kind, name).
type opAgg struct {
	svc, name     int32
	kind          uint8
	count, errors int64
	long          int64
	d             int32 // series: durations of non-long-lived spans
	total         int64
	self, cp      int64
	clientCalls   int64 // CLIENT spans
	clientServed  int64 // CLIENT spans with a SERVER child
	clientLong    int64 // long-lived CLIENT spans without a SERVER child
	errMsgs       map[int32]int64
	errEx         []int32 // first trace indices with an error
}

// pairAgg aggregates client/server pairs (an edge or one of its rows).
type pairAgg struct {
	calls, errors, long int64
	cd, sd, gd          int32 // series: client, server, client - server
	total               int64
}

func newPairAgg(ss *seriesSet) pairAgg {
	return pairAgg{cd: ss.newSeries(), sd: ss.newSeries(), gd: ss.newSeries()}
}

func (p *pairAgg) add(ss *seriesSet, c, s int64, isErr, long bool) {
	p.calls++
	if isErr {
		p.errors++
	}
	if long {
		p.long++
	}
	ss.add(p.cd, c)
	ss.add(p.sd, s)
	ss.add(p.gd, c-s)
	p.total += c
}

type edgeAgg struct {
	client, server int32
	pairAgg
	ex     topTraces
	rows   map[[2]int32]*pairAgg
	rowKey [][2]int32
}

type svcAgg struct {
	spans, errors int64
	self, cp      int64
	instances     map[int32]bool
}

type rootAgg struct {
	op     int32
	n      int64
	d      int32
	total  int64
	shares map[int32]int64
}

type pathAgg struct {
	ops   []int32
	n     int64
	d     int32
	total int64
	bneck int64
	ex    topTraces
}

type apiAgg struct {
	idx            int32
	verb, resource int32
	count, errors  int64
	long           int64
	d              int32
	etcdCalls      int64
	etcdMs         int64
}

type etcdAgg struct {
	method, prefix int32
	calls, errors  int64
	long           int64
	clientCalls    int64
	serverCalls    int64
	cd, sd         int32
}

type criAgg struct {
	method, runtime int32
	calls, errors   int64
	serverCalls     int64
	cd, sd          int32
}

type podAgg struct {
	idx           int32
	ns, pod       int32
	syncs, errors int64
	d             int32
	criCalls      int64
	criMs         int64
}

// topTraces keeps the k slowest traces (distinct trace indices).
type topTraces struct {
	d []int64
	t []int32
}

func (tt *topTraces) add(st *store, d int64, t int32, k int) {
	for i, x := range tt.t {
		if x == t {
			if d > tt.d[i] {
				tt.d = append(tt.d[:i], tt.d[i+1:]...)
				tt.t = append(tt.t[:i], tt.t[i+1:]...)
				break
			}
			return
		}
	}
	i := len(tt.d)
	for i > 0 && better(st, d, t, tt.d[i-1], tt.t[i-1]) {
		i--
	}
	if i >= k {
		return
	}
	tt.d = append(tt.d, 0)
	tt.t = append(tt.t, 0)
	copy(tt.d[i+1:], tt.d[i:])
	copy(tt.t[i+1:], tt.t[i:])
	tt.d[i], tt.t[i] = d, t
	if len(tt.d) > k {
		tt.d, tt.t = tt.d[:k], tt.t[:k]
	}
}

// better orders traces by duration descending, then trace id ascending.
func better(st *store, d1 int64, t1 int32, d2 int64, t2 int32) bool {
	if d1 != d2 {
		return d1 > d2
	}
	a, b := st.traceIDs[t1], st.traceIDs[t2]
	if a.hi != b.hi {
		return a.hi < b.hi
	}
	return a.lo < b.lo
}

func (tt *topTraces) ids(st *store) []string {
	out := make([]string, len(tt.t))
	for i, t := range tt.t {
		out[i] = st.traceIDs[t].String()
	}
	return out
}

// aggregator accumulates the per-trace results.
type aggregator struct {
	st  *store
	top int
	ss  *seriesSet

	ops      []opAgg
	opIdx    map[uint64]int32
	svcs     map[int32]*svcAgg
	edges    map[[2]int32]*edgeAgg
	loops    map[[2]int32]*edgeAgg
	roots    map[int32]*rootAgg
	paths    map[string]*pathAgg
	pathKey  []byte
	pathOps  []int32
	api      map[[2]int32]*apiAgg
	apiList  []*apiAgg
	etcd     map[[2]int32]*etcdAgg
	cri      map[[2]int32]*criAgg
	pods     map[[2]int32]*podAgg
	podList  []*podAgg
	prefixes map[int32]int32
	servers  map[int32]int32 // SERVER span name -> service id, -1 when several

	orphanOps   map[int32]int64
	overflowing int64 // children not inside their parent (after skew adjustment)

	slow       topTraces
	longLived  topTraces
	traces     int64
	longTr     int64
	errSpans   int64
	longSpans  int64
	linked     int64
	loneAuth   int64
	joinedAuth int64
	minStart   int64
	maxEnd     int64
}

func newAggregator(st *store, ar *arena, top int) *aggregator {
	return &aggregator{
		st: st, top: top, ss: &seriesSet{ar: ar},
		opIdx: map[uint64]int32{}, svcs: map[int32]*svcAgg{},
		edges: map[[2]int32]*edgeAgg{}, loops: map[[2]int32]*edgeAgg{},
		roots: map[int32]*rootAgg{}, paths: map[string]*pathAgg{},
		api: map[[2]int32]*apiAgg{}, etcd: map[[2]int32]*etcdAgg{},
		cri: map[[2]int32]*criAgg{}, pods: map[[2]int32]*podAgg{},
		prefixes: map[int32]int32{}, servers: map[int32]int32{}, orphanOps: map[int32]int64{},
		minStart: 1<<63 - 1, maxEnd: -1 << 63,
	}
}

func (ag *aggregator) op(svc, name int32, kind uint8) int32 {
	k := uint64(uint32(name))<<32 | uint64(uint32(svc))<<3 | uint64(kind)
	if i, ok := ag.opIdx[k]; ok {
		return i
	}
	i := int32(len(ag.ops))
	ag.ops = append(ag.ops, opAgg{svc: svc, name: name, kind: kind, d: ag.ss.newSeries()})
	ag.opIdx[k] = i
	return i
}

// errorText is what an error span says went wrong: its status message, else
// its HTTP or RPC status code, else error.type.
func (ag *aggregator) errorText(sp *span) int32 {
	if sp.msg != 0 {
		return sp.msg
	}
	st := ag.st
	for _, k := range [...]uint8{attrHTTPResponseStatus, attrHTTPStatusCode, attrRPCResponseStatus, attrRPCGRPCStatus, attrErrorType} {
		if v := st.attr(sp.attrs, k); v != "" {
			return st.internString(attrNames[k] + "=" + v)
		}
	}
	return 0
}

// addTrace aggregates the trace held by tw (built, classified, with self
// times and critical path).
func (ag *aggregator) addTrace(tw *traceWork) {
	st := ag.st
	nodes := tw.nodes
	t := tw.t
	ag.traces++
	for _, x := range tw.preord {
		n := &nodes[x]
		sp := n.sp
		dur := n.dur()
		isErr := sp.status == statusError
		n.op = ag.op(n.svc, sp.name, sp.kind)
		o := &ag.ops[n.op]
		o.count++
		sv := ag.svcs[n.svc]
		if sv == nil {
			sv = &svcAgg{}
			ag.svcs[n.svc] = sv
		}
		sv.spans++
		if isErr {
			ag.errSpans++
			sv.errors++
			o.errors++
			if o.errMsgs == nil {
				o.errMsgs = map[int32]int64{}
			}
			o.errMsgs[ag.errorText(sp)]++
			if len(o.errEx) < 3 && (len(o.errEx) == 0 || o.errEx[len(o.errEx)-1] != t) {
				o.errEx = append(o.errEx, t)
			}
		}
		if n.long {
			o.long++
			ag.longSpans++
		} else {
			ag.ss.add(o.d, dur)
			o.total += dur
			o.self += n.self
			o.cp += n.cp
			sv.self += n.self
			sv.cp += n.cp
		}
		if sp.links > 0 {
			ag.linked++
		}
		if sp.flags&flagOrphan != 0 {
			ag.orphanOps[n.op]++
		}
		if n.overflow {
			ag.overflowing++
		}
		ag.minStart = min(ag.minStart, sp.start)
		ag.maxEnd = max(ag.maxEnd, sp.end)
		if sp.kind == kindServer {
			if s, ok := ag.servers[sp.name]; !ok {
				ag.servers[sp.name] = n.svc
			} else if s != n.svc {
				ag.servers[sp.name] = -1
			}
		}
		if sp.kind == kindClient {
			o.clientCalls++
			if n.hasServer {
				o.clientServed++
			} else if n.long {
				o.clientLong++
			}
		}
		if p := n.par; p >= 0 {
			pn := &nodes[p]
			pErr := isErr || pn.sp.status == statusError
			switch {
			case pn.svc != n.svc:
				ag.addPair(ag.edges, pn, n, pErr, t)
			case pn.sp.kind == kindClient && sp.kind == kindServer:
				ag.addPair(ag.loops, pn, n, pErr, t)
			}
		}
		ag.kubernetes(tw, x)
	}

	// Per root: the primary root is the longest one.
	primary := int32(-1)
	for _, r := range tw.roots {
		if primary < 0 || nodes[r].dur() > nodes[primary].dur() {
			primary = r
		}
	}
	if primary < 0 {
		return
	}
	root := &nodes[primary]
	dur := root.dur()
	if len(nodes) == 1 && st.strs[root.sp.name] == "authentication" {
		ag.loneAuth++
	}
	if root.sp.flags&flagJoined != 0 {
		return // its request is ranked in its own trace
	}
	if root.long {
		ag.longTr++
		ag.longLived.add(st, dur, t, ag.top)
		return
	}
	ag.slow.add(st, dur, t, ag.top)

	entry := entrySpan(tw, primary)
	ra := ag.roots[nodes[entry].op]
	if ra == nil {
		ra = &rootAgg{op: nodes[entry].op, d: ag.ss.newSeries(), shares: map[int32]int64{}}
		ag.roots[nodes[entry].op] = ra
	}
	ra.n++
	ag.ss.add(ra.d, dur)
	ra.total += dur
	sub := tw.preord[root.pre : root.pre+root.size]
	bneck := primary
	for _, x := range sub {
		n := &nodes[x]
		if n.cp > 0 {
			ra.shares[n.op] += n.cp
		}
		if n.cp > nodes[bneck].cp || (n.cp == nodes[bneck].cp && n.depth > nodes[bneck].depth) {
			bneck = x
		}
	}

	// Slow path: root → bottleneck, consecutive equal "service: name" collapsed.
	ag.pathOps = ag.pathOps[:0]
	for x := bneck; x >= 0; x = nodes[x].par {
		ag.pathOps = append(ag.pathOps, nodes[x].op)
	}
	ag.pathKey = ag.pathKey[:0]
	var prev int32 = -1
	for i := len(ag.pathOps) - 1; i >= 0; i-- {
		o := ag.pathOps[i]
		if prev >= 0 && ag.ops[prev].svc == ag.ops[o].svc && ag.ops[prev].name == ag.ops[o].name {
			continue
		}
		prev = o
		ag.pathKey = strconv.AppendInt(ag.pathKey, int64(o), 36)
		ag.pathKey = append(ag.pathKey, ',')
	}
	pa := ag.paths[string(ag.pathKey)]
	if pa == nil {
		var kept []int32
		prev = -1
		for i := len(ag.pathOps) - 1; i >= 0; i-- {
			o := ag.pathOps[i]
			if prev >= 0 && ag.ops[prev].svc == ag.ops[o].svc && ag.ops[prev].name == ag.ops[o].name {
				continue
			}
			prev = o
			kept = append(kept, o)
		}
		pa = &pathAgg{ops: kept, d: ag.ss.newSeries()}
		ag.paths[string(ag.pathKey)] = pa
	}
	pa.n++
	ag.ss.add(pa.d, dur)
	pa.total += dur
	pa.bneck += nodes[bneck].cp
	pa.ex.add(st, dur, t, 3)
}

// entrySpan returns the span a trace is grouped under: the root, or the
// SERVER span right under an INTERNAL root of the same service (the
// kube-apiserver's "authentication" filter span starts before the
// request's SERVER span); the longest such child when there are several.
func entrySpan(tw *traceWork, root int32) int32 {
	nodes := tw.nodes
	rn := &nodes[root]
	if k := rn.sp.kind; k != kindInternal && k != kindUnspecified {
		return root
	}
	best := int32(-1)
	for _, c := range tw.kids[rn.kid0:rn.kidN] {
		cn := &nodes[c]
		if cn.sp.kind == kindServer && cn.svc == rn.svc && (best < 0 || cn.dur() > nodes[best].dur()) {
			best = c
		}
	}
	if best < 0 {
		return root
	}
	return best
}

func (ag *aggregator) addPair(m map[[2]int32]*edgeAgg, c, s *node, isErr bool, t int32) {
	k := [2]int32{c.svc, s.svc}
	e := m[k]
	if e == nil {
		e = &edgeAgg{client: c.svc, server: s.svc, pairAgg: newPairAgg(ag.ss), rows: map[[2]int32]*pairAgg{}}
		m[k] = e
	}
	long := c.long || s.long
	cd, sd := c.dur(), s.dur()
	e.add(ag.ss, cd, sd, isErr, long)
	if !long {
		e.ex.add(ag.st, cd, ag.traceOf(c), 3)
	}
	rk := [2]int32{c.sp.name, s.sp.name}
	r := e.rows[rk]
	if r == nil {
		p := newPairAgg(ag.ss)
		r = &p
		e.rows[rk] = r
		e.rowKey = append(e.rowKey, rk)
	}
	r.add(ag.ss, cd, sd, isErr, long)
}

func (ag *aggregator) traceOf(n *node) int32 { return n.sp.trace }

// kubernetes adds node x to the Kubernetes groupings.
func (ag *aggregator) kubernetes(tw *traceWork, x int32) {
	st := ag.st
	nodes := tw.nodes
	n := &nodes[x]
	sp := n.sp
	nf := tw.names.get(sp.name)
	isErr := sp.status == statusError

	// kube-apiserver request: the handler span carrying verb + resource.
	if n.verbAnc == x {
		ai := &st.attrInfo[sp.attrs]
		k := [2]int32{ai.verb, ai.resource}
		g := ag.api[k]
		if g == nil {
			g = &apiAgg{idx: int32(len(ag.apiList)), verb: k[0], resource: k[1], d: ag.ss.newSeries()}
			ag.api[k] = g
			ag.apiList = append(ag.apiList, g)
		}
		n.grp = g.idx
		g.count++
		req := n
		if n.serverAnc >= 0 {
			req = &nodes[n.serverAnc]
		}
		if isErr || req.sp.status == statusError {
			g.errors++
		}
		if n.long || req.long {
			g.long++
		} else {
			ag.ss.add(g.d, req.dur())
		}
	}

	// etcd RPCs, seen from the client (apiserver) or the server (etcd).
	if nf.etcd != 0 {
		switch sp.kind {
		case kindClient:
			prefix := int32(0)
			if n.keyAnc >= 0 {
				kid := attrID(st, nodes[n.keyAnc].sp.attrs, attrKey)
				p, ok := ag.prefixes[kid]
				if !ok {
					p = st.internString(keyPrefix(st.strs[kid]))
					ag.prefixes[kid] = p
				}
				prefix = p
			}
			g := ag.etcdGroup(nf.etcd, prefix)
			g.calls++
			g.clientCalls++
			errs := isErr
			srv := serverChild(tw, x)
			if srv >= 0 && nodes[srv].sp.status == statusError {
				errs = true
			}
			if errs {
				g.errors++
			}
			long := n.long || (srv >= 0 && nodes[srv].long)
			if long {
				g.long++
			} else {
				ag.ss.add(g.cd, n.dur())
				if srv >= 0 {
					ag.ss.add(g.sd, nodes[srv].dur())
				}
			}
			if srv >= 0 {
				g.serverCalls++
			}
			if n.verbAnc >= 0 && nodes[n.verbAnc].grp >= 0 {
				a := ag.apiList[nodes[n.verbAnc].grp]
				a.etcdCalls++
				a.etcdMs += n.dur()
			}
		case kindServer:
			if p := n.par; p >= 0 && nodes[p].sp.kind == kindClient && nodes[p].svc != n.svc {
				break // counted with its client
			}
			g := ag.etcdGroup(nf.etcd, 0)
			g.calls++
			g.serverCalls++
			if isErr {
				g.errors++
			}
			if n.long {
				g.long++
			} else {
				ag.ss.add(g.sd, n.dur())
			}
		}
	}

	// kubelet → runtime CRI calls.
	if nf.cri != 0 && sp.kind == kindClient {
		srv := serverChild(tw, x)
		rt := int32(0)
		if srv >= 0 {
			rt = nodes[srv].svc
		}
		k := [2]int32{nf.cri, rt}
		g := ag.cri[k]
		if g == nil {
			g = &criAgg{method: nf.cri, runtime: rt, cd: ag.ss.newSeries(), sd: ag.ss.newSeries()}
			ag.cri[k] = g
		}
		g.calls++
		if isErr || (srv >= 0 && nodes[srv].sp.status == statusError) {
			g.errors++
		}
		ag.ss.add(g.cd, n.dur())
		if srv >= 0 {
			g.serverCalls++
			ag.ss.add(g.sd, nodes[srv].dur())
		}
		if n.podAnc >= 0 && nodes[n.podAnc].grp >= 0 {
			pg := ag.podList[nodes[n.podAnc].grp]
			pg.criCalls++
			pg.criMs += n.dur()
		}
	}

	// kubelet pod-level spans.
	if nf.podSync && n.podAnc == x {
		k := [2]int32{attrID(st, sp.attrs, attrK8sNamespace), attrID(st, sp.attrs, attrK8sPodName)}
		g := ag.pods[k]
		if g == nil {
			g = &podAgg{idx: int32(len(ag.podList)), ns: k[0], pod: k[1], d: ag.ss.newSeries()}
			ag.pods[k] = g
			ag.podList = append(ag.podList, g)
		}
		n.grp = g.idx
		g.syncs++
		if isErr {
			g.errors++
		}
		ag.ss.add(g.d, n.dur())
	}
}

func (ag *aggregator) etcdGroup(method, prefix int32) *etcdAgg {
	k := [2]int32{method, prefix}
	g := ag.etcd[k]
	if g == nil {
		g = &etcdAgg{method: method, prefix: prefix, cd: ag.ss.newSeries(), sd: ag.ss.newSeries()}
		ag.etcd[k] = g
	}
	return g
}

// serverChild returns the first SERVER child of x in another service, -1.
func serverChild(tw *traceWork, x int32) int32 {
	n := &tw.nodes[x]
	for _, c := range tw.kids[n.kid0:n.kidN] {
		cn := &tw.nodes[c]
		if cn.sp.kind == kindServer && cn.svc != n.svc {
			return c
		}
	}
	return -1
}

func attrID(st *store, set int32, k uint8) int32 {
	for _, a := range st.attrSets[set] {
		if a.key == k {
			return a.val
		}
	}
	return 0
}
