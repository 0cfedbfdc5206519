package report

import (
	"math"
	"sort"
	"strconv"

	"github.com/trace-capture/trace-capture/analyze"
)

// The component graph is laid out here, on the server, so that the page
// needs no layout library: services are boxes in layers from left (callers)
// to right (callees), edges are curves with a latency label in the middle.

const (
	nodeW      = 210
	nodeH      = 66
	layerGap   = 290 // horizontal space between two layers, for edge labels
	rowGap     = 60
	graphPad   = 16
	labelW     = 240
	labelH     = 52
	maxNodes   = 40
	maxGEdges  = 80
	strokeMin  = 1.5
	strokeSpan = 4.5
)

type graphView struct {
	Width, Height int
	Nodes         []graphNode
	Edges         []graphEdge
	Omitted       int // services left out of the drawing
	Summary       string
}

type graphNode struct {
	Name        string
	Color       int
	X, Y        int
	Spans       string
	Self        string
	CP          string
	Errors      int64
	ErrText     string
	Instances   int
	TextX       int
	NameY, SubY int
	Sub2Y       int
}

type graphEdge struct {
	Client, Server string
	D              string // SVG path
	Stroke         string
	Hot            bool
	LX, LY         int // label box top-left
	LW             int // label box width
	Calls          string
	ErrText        string
	Errors         int64
	Latency        string
	Gap            string
	Title          string
}

// layoutGraph places the services and the cross-component edges of r.
func layoutGraph(r *analyze.Result, colors map[string]int) graphView {
	// Nodes: every service on an edge, then the busiest others, capped.
	inEdge := map[string]bool{}
	for _, e := range r.Edges {
		inEdge[e.ClientService] = true
		inEdge[e.ServerService] = true
	}
	svc := map[string]analyze.Service{}
	for _, s := range r.Services {
		svc[s.Name] = s
	}
	var names []string
	for n := range inEdge {
		names = append(names, n)
	}
	sort.Strings(names)
	var others []analyze.Service
	for _, s := range r.Services {
		if !inEdge[s.Name] {
			others = append(others, s)
		}
	}
	sort.SliceStable(others, func(i, j int) bool { return others[i].Spans > others[j].Spans })
	for _, s := range others {
		names = append(names, s.Name)
	}
	var g graphView
	if len(names) > maxNodes {
		g.Omitted = len(names) - maxNodes
		names = names[:maxNodes]
	}
	if len(names) == 0 {
		return g
	}
	sort.Strings(names)
	idx := map[string]int{}
	for i, n := range names {
		idx[n] = i
	}

	// Edges between drawn nodes, the busiest first, capped.
	edges := make([]analyze.Edge, 0, len(r.Edges))
	for _, e := range r.Edges {
		_, a := idx[e.ClientService]
		_, b := idx[e.ServerService]
		if a && b && e.ClientService != e.ServerService {
			edges = append(edges, e)
		}
	}
	sort.SliceStable(edges, func(i, j int) bool {
		if edges[i].Calls != edges[j].Calls {
			return edges[i].Calls > edges[j].Calls
		}
		if edges[i].ClientService != edges[j].ClientService {
			return edges[i].ClientService < edges[j].ClientService
		}
		return edges[i].ServerService < edges[j].ServerService
	})
	if len(edges) > maxGEdges {
		edges = edges[:maxGEdges]
	}

	// Layers: longest path from the callers, over a DAG obtained by
	// ignoring the edges that close a cycle (found by DFS in name order).
	n := len(names)
	out := make([][]int, n)
	for _, e := range edges {
		a, b := idx[e.ClientService], idx[e.ServerService]
		out[a] = append(out[a], b)
	}
	for i := range out {
		sort.Ints(out[i])
	}
	state := make([]int, n) // 0 new, 1 on stack, 2 done
	back := map[[2]int]bool{}
	var order []int // reverse post-order = topological order of the DAG
	var dfs func(int)
	dfs = func(u int) {
		state[u] = 1
		for _, v := range out[u] {
			switch state[v] {
			case 0:
				dfs(v)
			case 1:
				back[[2]int{u, v}] = true
			}
		}
		state[u] = 2
		order = append(order, u)
	}
	indeg := make([]int, n)
	for u := range out {
		for _, v := range out[u] {
			indeg[v]++
		}
	}
	for u := 0; u < n; u++ { // roots first so that callers start layers
		if indeg[u] == 0 && state[u] == 0 {
			dfs(u)
		}
	}
	for u := 0; u < n; u++ {
		if state[u] == 0 {
			dfs(u)
		}
	}
	layer := make([]int, n)
	for i := len(order) - 1; i >= 0; i-- {
		u := order[i]
		for _, v := range out[u] {
			if !back[[2]int{u, v}] && layer[v] < layer[u]+1 {
				layer[v] = layer[u] + 1
			}
		}
	}
	nLayers := 0
	for _, l := range layer {
		if l+1 > nLayers {
			nLayers = l + 1
		}
	}
	cols := make([][]int, nLayers)
	var lonely []int // services on no edge: a row below the graph
	for u := 0; u < n; u++ {
		if len(edges) > 0 && !inEdge[names[u]] {
			lonely = append(lonely, u)
			continue
		}
		cols[layer[u]] = append(cols[layer[u]], u)
	}
	// Order within a layer by the mean position of the callers (one sweep),
	// then by name.
	pos := make([]float64, n)
	for l, col := range cols {
		if l > 0 {
			for _, u := range col {
				sum, cnt := 0.0, 0
				for a := range out {
					for _, b := range out[a] {
						if b == u && layer[a] < l {
							sum += pos[a]
							cnt++
						}
					}
				}
				if cnt > 0 {
					pos[u] = sum / float64(cnt)
				} else {
					pos[u] = math.MaxFloat64
				}
			}
			sort.SliceStable(col, func(i, j int) bool {
				if pos[col[i]] != pos[col[j]] {
					return pos[col[i]] < pos[col[j]]
				}
				return names[col[i]] < names[col[j]]
			})
		}
		for i, u := range col {
			pos[u] = float64(i)
		}
	}
	tallest := 0
	for _, col := range cols {
		if len(col) > tallest {
			tallest = len(col)
		}
	}
	height := graphPad*2 + tallest*nodeH + (tallest-1)*rowGap
	width := graphPad*2 + nLayers*nodeW + (nLayers-1)*layerGap
	g.Width, g.Height = width, height
	xy := make([][2]int, n)
	for l, col := range cols {
		colH := len(col)*nodeH + (len(col)-1)*rowGap
		y0 := (height - colH) / 2
		for i, u := range col {
			xy[u] = [2]int{graphPad + l*(nodeW+layerGap), y0 + i*(nodeH+rowGap)}
		}
	}
	// Edges: stroke by calls (log scale); the edge with the most total
	// client time is "hot".
	var maxCalls int64 = 1
	hot := -1
	hotTotal := -1.0
	for i, e := range edges {
		if e.Calls > maxCalls {
			maxCalls = e.Calls
		}
		if e.ClientMsTotal > hotTotal {
			hot, hotTotal = i, e.ClientMsTotal
		}
	}
	loops := 0
	for i, e := range edges {
		a, b := idx[e.ClientService], idx[e.ServerService]
		x1, y1 := xy[a][0]+nodeW, xy[a][1]+nodeH/2
		x2, y2 := xy[b][0], xy[b][1]+nodeH/2
		var d string
		var lx, ly int
		if layer[b] == layer[a]+1 {
			mx := (x1 + x2) / 2
			d = "M" + itoa(x1) + " " + itoa(y1) + " C" + itoa(mx) + " " + itoa(y1) + " " + itoa(mx) + " " + itoa(y2) + " " + itoa(x2-2) + " " + itoa(y2)
			lx, ly = (x1+x2)/2-labelW/2, (y1+y2)/2-labelH/2
		} else {
			// A long, backward or same-layer edge would cross boxes: it
			// leaves the source on the right, dips below every box of the
			// layers it spans and enters the target from the left.
			lo, hi := min(layer[a], layer[b]), max(layer[a], layer[b])
			bottom := 0
			for u := range names {
				if inEdge[names[u]] && layer[u] >= lo && layer[u] <= hi {
					bottom = max(bottom, xy[u][1]+nodeH)
				}
			}
			dip := bottom + 28 + 30*loops // lowest point of the curve
			loops++
			ctrl := (4*dip - min(y1, y2)) / 3 // a cubic reaches 3/4 of its control points
			d = "M" + itoa(x1) + " " + itoa(y1) + " C" + itoa(x1+90) + " " + itoa(ctrl) + " " + itoa(x2-90) + " " + itoa(ctrl) + " " + itoa(x2-2) + " " + itoa(y2)
			lx, ly = (x1+x2)/2-labelW/2, dip-labelH/2
			if dip+graphPad > g.Height {
				g.Height = dip + graphPad
			}
		}
		w := strokeMin
		if maxCalls > 1 {
			w += strokeSpan * math.Log1p(float64(e.Calls)) / math.Log1p(float64(maxCalls))
		}
		calls := plural(e.Calls, "call")
		errText := plural(e.Errors, "error")
		g.Edges = append(g.Edges, graphEdge{
			Client: e.ClientService, Server: e.ServerService, D: d,
			Stroke: strconv.FormatFloat(w, 'f', 2, 64), Hot: i == hot,
			LX: lx, LY: ly, LW: labelW, Calls: calls, ErrText: errText, Errors: e.Errors,
			Latency: "client p50 " + fmtMs(e.ClientMs.P50) + " · p99 " + fmtMs(e.ClientMs.P99),
			Gap:     "server p99 " + fmtMs(e.ServerMs.P99) + " · gap p99 " + fmtMs(e.GapMs.P99),
			Title: e.ClientService + " → " + e.ServerService + ": " + fmtInt(e.Calls) + " calls, client p50 " +
				fmtMs(e.ClientMs.P50) + ", p90 " + fmtMs(e.ClientMs.P90) + ", p99 " + fmtMs(e.ClientMs.P99) +
				", max " + fmtMs(e.ClientMs.Max) + "; server p99 " + fmtMs(e.ServerMs.P99) + "; gap p50 " +
				fmtMs(e.GapMs.P50) + ", p99 " + fmtMs(e.GapMs.P99),
		})
	}
	spreadLabels(&g)
	// Services on no edge: a row under the graph, wrapping at its width.
	if len(lonely) > 0 {
		perRow := max(1, (g.Width-2*graphPad+layerGap/4)/(nodeW+layerGap/4))
		y0 := g.Height
		if len(edges) > 0 {
			y0 += 8
		} else {
			y0 = graphPad
		}
		for k, u := range lonely {
			xy[u] = [2]int{graphPad + (k%perRow)*(nodeW+layerGap/4), y0 + (k/perRow)*(nodeH+rowGap/2)}
			g.Height = max(g.Height, xy[u][1]+nodeH+graphPad)
		}
	}
	for u, name := range names {
		s := svc[name]
		x, y := xy[u][0], xy[u][1]
		g.Nodes = append(g.Nodes, graphNode{
			Name: name, Color: colors[name], X: x, Y: y,
			Spans: fmtInt(s.Spans), Self: fmtMs(s.SelfMsTotal), CP: fmtMs(s.CriticalPathMsTotal),
			Errors: s.ErrorSpans, ErrText: plural(s.ErrorSpans, "error"), Instances: len(s.Instances),
			TextX: x + 16, NameY: y + 24, SubY: y + 42, Sub2Y: y + 57,
		})
	}

	g.Summary = plural(int64(len(g.Nodes)), "service")
	if len(g.Edges) > 0 {
		g.Summary += " · " + plural(int64(len(g.Edges)), "edge")
	}
	return g
}

func itoa(i int) string { return strconv.Itoa(i) }

// spreadLabels moves edge labels down until no two overlap, and grows the
// drawing to fit them.
func spreadLabels(g *graphView) {
	order := make([]int, len(g.Edges))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ea, eb := g.Edges[order[a]], g.Edges[order[b]]
		if ea.LY != eb.LY {
			return ea.LY < eb.LY
		}
		return ea.LX < eb.LX
	})
	var placed []int
	for _, i := range order {
		e := &g.Edges[i]
		for moved := true; moved; {
			moved = false
			for _, j := range placed {
				o := g.Edges[j]
				if e.LX < o.LX+o.LW && o.LX < e.LX+e.LW && e.LY < o.LY+labelH+6 && o.LY < e.LY+labelH+6 {
					e.LY = o.LY + labelH + 6
					moved = true
				}
			}
		}
		placed = append(placed, i)
		if e.LY+labelH+graphPad > g.Height {
			g.Height = e.LY + labelH + graphPad
		}
	}
}
