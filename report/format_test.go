package report

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/trace-capture/trace-capture/analyze"
)

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		ms   float64
		want string
	}{
		{0, "0 ms"}, {0.0042, "4.2 µs"}, {0.5, "0.500 ms"}, {1.234, "1.23 ms"}, {45.67, "45.7 ms"}, {245.68, "246 ms"},
		{1234, "1.23 s"}, {12345, "12.3 s"}, {138592.7, "139 s"}, {900000, "15.0 min"}, {-1.5, "−1.50 ms"}, {math.NaN(), "–"},
	} {
		if got := fmtMs(c.ms); got != c.want {
			t.Errorf("fmtMs(%v) = %q, want %q", c.ms, got, c.want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 10949: "10,949", 1234567: "1,234,567", -4200: "-4,200"} {
		if got := fmtInt(n); got != want {
			t.Errorf("fmtInt(%d) = %q, want %q", n, got, want)
		}
	}
	if got := fmtDelta(2.5); got != "+2.50 ms" {
		t.Errorf("fmtDelta = %q", got)
	}
	if got := fmtRatio(1.387); got != "×1.39" {
		t.Errorf("fmtRatio = %q", got)
	}
	if got := fmtPct(0.0004); got != "<0.1%" {
		t.Errorf("fmtPct = %q", got)
	}
	if got := plural(1, "call") + "|" + plural(2, "call") + "|" + plural(0, "call"); got != "1 call|2 calls|" {
		t.Errorf("plural = %q", got)
	}
	if got := fmtTime("2026-11-25T10:18:57.404855157Z"); got != "2026-11-25 10:18:57.404 UTC" {
		t.Errorf("fmtTime = %q", got)
	}
	if got := fmtTime("<b>"); got != "<b>" {
		t.Errorf("fmtTime of junk = %q", got)
	}
	if got := wbr("/api/v1/namespaces/{:namespace}/pods"); !reflect.DeepEqual(got, []string{"/", "api/", "v1/", "namespaces/", "{:namespace}/", "pods"}) {
		t.Errorf("wbr = %q", got)
	}
	if got := strings.Join(wbr("a/"), ""); got != "a/" {
		t.Errorf("wbr keeps text: %q", got)
	}
}

func TestLayoutGraph(t *testing.T) {
	edge := func(a, b string, calls int64) analyze.Edge {
		return analyze.Edge{ClientService: a, ServerService: b, Calls: calls, ClientMsTotal: float64(calls)}
	}
	r := &analyze.Result{
		Services: []analyze.Service{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}, {Name: "lonely"}},
		// a → b → c → a is a cycle; d → c is a second caller.
		Edges: []analyze.Edge{edge("a", "b", 10), edge("b", "c", 5), edge("c", "a", 1), edge("d", "c", 50)},
	}
	g := layoutGraph(r, serviceColors(r))
	if len(g.Nodes) != 5 || len(g.Edges) != 4 {
		t.Fatalf("nodes %d, edges %d", len(g.Nodes), len(g.Edges))
	}
	x := map[string]int{}
	for _, n := range g.Nodes {
		x[n.Name] = n.X
		if n.X < 0 || n.Y < 0 || n.X+nodeW > g.Width || n.Y+nodeH > g.Height {
			t.Errorf("node %s at (%d,%d) outside %dx%d", n.Name, n.X, n.Y, g.Width, g.Height)
		}
	}
	// Callers sit left of callees, except for the one edge that closes
	// the cycle.
	backward := 0
	for _, e := range r.Edges {
		if x[e.ClientService] >= x[e.ServerService] {
			backward++
		}
	}
	if backward != 1 || x["d"] >= x["c"] {
		t.Errorf("%d edges point backward, want 1 (the cycle): %v", backward, x)
	}
	y := map[string]int{}
	for _, n := range g.Nodes {
		y[n.Name] = n.Y
	}
	if x["lonely"] != x["d"] || y["lonely"] <= y["d"] {
		t.Errorf("a service on no edge should sit in the row below the graph: x %v y %v", x, y)
	}
	hot := 0
	for _, e := range g.Edges {
		if e.Hot {
			hot++
			if e.Client != "d" {
				t.Errorf("hot edge is %s → %s, want d → c", e.Client, e.Server)
			}
		}
		if e.LY+labelH > g.Height {
			t.Errorf("label of %s → %s below the drawing", e.Client, e.Server)
		}
	}
	if hot != 1 {
		t.Errorf("%d hot edges", hot)
	}
	// Labels never overlap.
	for i, a := range g.Edges {
		for _, b := range g.Edges[i+1:] {
			if a.LX < b.LX+b.LW && b.LX < a.LX+a.LW && a.LY < b.LY+labelH && b.LY < a.LY+labelH {
				t.Errorf("labels of %s→%s and %s→%s overlap", a.Client, a.Server, b.Client, b.Server)
			}
		}
	}

	// Many services: the drawing is capped and says so.
	var many analyze.Result
	for i := 0; i < maxNodes+7; i++ {
		many.Services = append(many.Services, analyze.Service{Name: fmtInt(int64(1000 + i))})
	}
	g = layoutGraph(&many, serviceColors(&many))
	if len(g.Nodes) != maxNodes || g.Omitted != 7 {
		t.Errorf("nodes %d omitted %d", len(g.Nodes), g.Omitted)
	}
	if g = layoutGraph(&analyze.Result{}, nil); len(g.Nodes) != 0 || g.Width != 0 {
		t.Errorf("empty graph: %+v", g)
	}
}

func TestBuildTraceMalformedParents(t *testing.T) {
	// Parent indices that point forward, at themselves or out of range must
	// not loop or panic.
	tr := analyze.Trace{TraceID: "t", DurationMs: 10, SpanCount: 4, Spans: []analyze.TraceSpan{
		{SpanID: "0", Parent: 1, DurationMs: 10, Critical: true},
		{SpanID: "1", Parent: 0, DurationMs: 5, Critical: true},
		{SpanID: "2", Parent: 2, DurationMs: 5},
		{SpanID: "3", Parent: 99, DurationMs: -1},
	}}
	tv, dt := buildTrace(tr, 0, "trace-1", map[string]int{}, 3)
	if len(tv.Rows) != 3 || len(dt.Spans) != 3 || tv.Omitted != 1 {
		t.Errorf("rows %d data %d omitted %d", len(tv.Rows), len(dt.Spans), tv.Omitted)
	}
}
