package report

import (
	"bytes"
	"encoding/json"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trace-capture/trace-capture/analyze"
)

// Span data is untrusted: a service name, span name, attribute or status
// message can be any text a workload or a client put there.
var hostile = []string{
	`<script>document.documentElement.setAttribute('data-pwned','script')</script>`,
	`"><img src=x onerror="document.documentElement.setAttribute('data-pwned','img')">`,
	`</script><script>document.documentElement.setAttribute('data-pwned','break')</script>`,
	`' onmouseover='document.documentElement.setAttribute("data-pwned","attr")`,
	`<svg onload="document.documentElement.setAttribute('data-pwned','svg')">`,
	"<!-- --> ]]> {{.Title}} javascript:alert(1) &amp; &#x3c;",
	"naïve ☃ 😀 \u2028\u2029 \u202eRTL\u202c 漢字 \x00 \x7f",
}

// hostileResult puts the hostile strings into every string field the page
// shows.
func hostileResult() *analyze.Result {
	h := func(i int) string { return hostile[i%len(hostile)] }
	p := analyze.Percentiles{P50: 1, P90: 2, P99: 3, Max: 4}
	spans := []analyze.TraceSpan{{SpanID: h(0), Parent: -1, StartMs: 0, DurationMs: 10, SelfMs: 2, Service: h(0), Name: h(1), Kind: h(2),
		Status: "ERROR", StatusMessage: h(3), Critical: true, CriticalMs: 2, Attributes: map[string]string{h(4): h(5), "k": h(6), h(0): h(1)}}}
	for i := 1; i < 8; i++ {
		spans = append(spans, analyze.TraceSpan{SpanID: h(i), Parent: i - 1, Depth: i, StartMs: float64(i), DurationMs: 10 - float64(i),
			SelfMs: 1, Service: h(i), Name: h(i + 1), Kind: "INTERNAL", Status: "UNSET", Critical: i%2 == 0, CriticalMs: 1,
			Attributes: map[string]string{h(i + 2): h(i + 3)}, SkewMs: 0.5, Orphan: i == 3, LongLived: i == 4, Links: i})
	}
	var services []analyze.Service
	for i := range hostile {
		services = append(services, analyze.Service{Name: h(i), Instances: []string{h(i + 1)}, Spans: int64(10 + i), SelfMsTotal: 1, CriticalPathMsTotal: 1})
	}
	edge := analyze.Edge{ClientService: h(0), ServerService: h(1), Calls: 3, Errors: 1, ClientMs: p, ServerMs: p, GapMs: p, ClientMsTotal: 3,
		Operations:       []analyze.EdgeOperation{{ClientOperation: h(2), ServerOperation: h(3), Calls: 3, ClientMs: p, ServerMs: p, GapMs: p}},
		ExemplarTraceIDs: []string{h(4), "0102030405060708090a0b0c0d0e0f10"}}
	change := analyze.Change{BaseCount: 1, Count: 2, BaseMs: p, Ms: p, DeltaP99Ms: 1, RatioP50: 1.5, Status: h(5)}
	return &analyze.Result{
		SchemaVersion: analyze.SchemaVersion,
		Summary:       analyze.Summary{Spans: 8, Traces: 1, Services: len(services), Window: analyze.Window{Start: h(0), End: h(1), DurationMs: 10}},
		Sources:       []analyze.Source{{Name: h(0), Services: []string{h(1)}, ReceivedSpans: -1, Dropped: map[string]int64{h(2): 1}, SentNothing: true, Note: h(3)}},
		Services:      services,
		Edges:         []analyze.Edge{edge},
		Loopback:      []analyze.Edge{edge},
		Operations:    []analyze.Operation{{Service: h(0), Name: h(1), Kind: h(2), Count: 1, Ms: p, CriticalPathMsTotal: 1}},
		RootOperations: []analyze.RootOperation{{Service: h(0), Name: h(1), Traces: 1, Ms: p,
			CriticalPath: []analyze.CriticalShare{{Service: h(2), Name: h(3), MsTotal: 1, Share: 1}}}},
		SlowPaths: []analyze.SlowPath{{Path: []string{h(0) + ": " + h(1), h(2), h(3) + ": " + h(4)}, Traces: 1, Ms: p, ExemplarTraceIDs: []string{h(5), h(0)}}},
		SlowTraces: []analyze.Trace{{TraceID: h(0), RootService: h(0), RootOperation: h(1), Start: h(2), DurationMs: 10, SpanCount: 9,
			Services: []string{h(3)}, Errors: 1, Roots: 2, Bottleneck: h(4), Spans: spans, SpansOmitted: 1}},
		LongLived: []analyze.LongLivedTrace{{TraceID: h(1), RootService: h(2), RootOperation: h(3), DurationMs: 1, Reason: h(4), Detail: h(5)}},
		Errors:    []analyze.ErrorGroup{{Service: h(0), Name: h(1), Kind: h(2), Count: 1, Messages: []analyze.MessageCount{{Message: h(3), Count: 1}}, ExemplarTraceIDs: []string{h(4)}}},
		ClockSkew: []analyze.ClockSkew{{Host: h(0), Services: []string{h(1)}, Reference: h(2), Pairs: 1, EstimatedMs: 2, AppliedMs: 1, Capped: true}},
		Kubernetes: analyze.Kubernetes{
			APIServer: []analyze.APIRequestGroup{{Verb: h(0), Resource: h(1), Count: 1, Ms: p}},
			Etcd:      []analyze.EtcdGroup{{Method: h(2), KeyPrefix: h(3), Calls: 1, ClientMs: p, ServerMs: p}},
			CRI:       []analyze.CRIGroup{{Method: h(4), Runtime: h(5), Calls: 1, ClientMs: p}},
			Pods:      []analyze.PodGroup{{Namespace: h(6), Pod: h(0), Syncs: 1, Ms: p}},
		},
		Warnings: []analyze.Warning{{Code: h(0), Severity: h(1), Message: h(2), Count: 1}, {Code: "x", Severity: "warning", Message: h(3)}},
		Baseline: &analyze.BaselineDiff{Label: h(4),
			Edges:      []analyze.EdgeChange{{ClientService: h(0), ServerService: h(1), Client: change, Server: change}},
			Operations: []analyze.OperationChange{{Service: h(2), Name: h(3), Kind: h(4), Change: change}},
			Paths:      []analyze.PathChange{{Path: []string{h(5) + ": " + h(6)}, Change: change}},
		},
	}
}

var reportData = regexp.MustCompile(`(?s)<script type="application/json" id="report-data">(.*?)</script>`)

func TestHostileStringsAreEscaped(t *testing.T) {
	r := hostileResult()
	var b bytes.Buffer
	if err := WriteHTML(&b, r, HTMLOptions{Title: hostile[0], ToolVersion: hostile[1]}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	// No payload survives as markup: no raw tag, no quote that closes an
	// attribute, no comment opener, no NUL.
	// (The JSON data block is checked below: inside it a quote is JSON.)
	markup := reportData.ReplaceAllString(page, "")
	for _, bad := range []string{"<img", "<svg onload", `"><img`, `' onmouseover='`, "data-pwned','script')</script>", "<!-- -->", "\x00"} {
		if strings.Contains(markup, bad) {
			i := strings.Index(markup, bad)
			t.Errorf("page contains %q unescaped: …%s…", bad, markup[max(0, i-80):min(len(markup), i+80)])
		}
	}
	if n := strings.Count(strings.ToLower(page), "<script"); n != 2 {
		t.Errorf("page has %d <script elements, want 2", n)
	}
	if n := strings.Count(strings.ToLower(page), "</script"); n != 2 {
		t.Errorf("page has %d </script, want 2", n)
	}
	// Shown as text, escaped.
	for _, want := range []string{
		"&lt;script&gt;document.documentElement.setAttribute(&#39;data-pwned&#39;,&#39;script&#39;)&lt;/script&gt;",
		"&#34;&gt;&lt;img src=x onerror=&#34;",
		"{{.Title}}",
		"naïve ☃ 😀",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks the escaped text %q", want)
		}
	}
	// The JSON data block decodes back to the original strings.
	m := reportData.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no report-data block")
	}
	// Inside the script element, line separators would end a JS string in
	// old engines; html/template writes them as escapes.
	if strings.ContainsAny(m[1], "\u2028\u2029<>") {
		t.Error("report-data holds raw U+2028/U+2029, < or >")
	}
	var data pageData
	if err := json.Unmarshal([]byte(m[1]), &data); err != nil {
		t.Fatalf("report-data is not JSON: %v", err)
	}
	if len(data.Traces) != 1 || len(data.Traces[0].Spans) != 8 {
		t.Fatalf("report-data traces = %+v", data.Traces)
	}
	sp := data.Traces[0].Spans[0]
	if sp.Service != hostile[0] || sp.Name != hostile[1] || sp.SpanID != hostile[0] {
		t.Errorf("span strings changed on the way: %q %q %q", sp.Service, sp.Name, sp.SpanID)
	}
	attrs := map[string]string{}
	for _, kv := range sp.Attrs {
		attrs[kv[0]] = kv[1]
	}
	if attrs[hostile[4]] != hostile[5] || attrs["k"] != strings.ToValidUTF8(hostile[6], "\uFFFD") && attrs["k"] != hostile[6] {
		t.Errorf("attributes changed on the way: %q", sp.Attrs)
	}
	// Every occurrence of the payloads in markup is escaped: unescaping the
	// page's text must be what brings them back.
	if !strings.Contains(html.UnescapeString(page), hostile[0]) {
		t.Error("payload not present even after unescaping: was it dropped?")
	}

	// The JSON report keeps the strings intact and escapes <, > and &.
	b.Reset()
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script>") {
		t.Error("report.json contains a raw <script>")
	}
	var back analyze.Result
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Services[0].Name != hostile[0] {
		t.Errorf("report.json changed a service name: %q", back.Services[0].Name)
	}
}

// TestHostilePageInChromium loads the hostile page in the browser: no
// payload may run, and the page's own script must still work.
func TestHostilePageInChromium(t *testing.T) {
	needChromium(t)
	dir := artifactsDir(t)
	page := filepath.Join(dir, "hostile.report.html")
	var b bytes.Buffer
	if err := WriteHTML(&b, hostileResult(), HTMLOptions{Title: hostile[0]}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(page)
	if err != nil {
		t.Fatal(err)
	}
	dom, stderr := runChromium(t, "--dump-dom", fileURL(abs, "selftest"))
	attrs := rootAttrs(t, dom)
	if v, ok := attrs["data-pwned"]; ok {
		t.Fatalf("a payload ran: data-pwned=%q", v)
	}
	if attrs["data-selftest"] != "pass" {
		t.Errorf("self test: %q", attrs["data-selftest"])
	}
	if p := consoleProblems(stderr); len(p) > 0 {
		t.Errorf("console output from the page:\n%s", strings.Join(p, "\n"))
	}
	// The span details the self test opened were built with textContent:
	// the payload is in the DOM as text, never as an element.
	if strings.Contains(dom, "<img src=\"x\"") || strings.Contains(dom, "<img src=x") {
		t.Error("an <img> element from span data reached the DOM")
	}
}

// FuzzWriteHTML puts arbitrary text into every string of a Result: the page
// must render, keep exactly its own two script elements, and carry the span
// data as valid JSON.
func FuzzWriteHTML(f *testing.F) {
	for _, h := range hostile {
		f.Add(h, "x")
	}
	f.Add("", "")
	f.Add("\xff\xfe", "</SCRIPT >")
	f.Fuzz(func(t *testing.T, a, b string) {
		hostileSave := hostile
		hostile = []string{a, b, a + b, b + a, "<" + a, b + ">", a}
		r := hostileResult()
		hostile = hostileSave
		var page bytes.Buffer
		if err := WriteHTML(&page, r, HTMLOptions{Title: a, ToolVersion: b}); err != nil {
			t.Fatal(err)
		}
		lower := strings.ToLower(page.String())
		if n := strings.Count(lower, "<script"); n != 2 {
			t.Fatalf("%d <script", n)
		}
		if n := strings.Count(lower, "</script"); n != 2 {
			t.Fatalf("%d </script", n)
		}
		m := reportData.FindStringSubmatch(page.String())
		if m == nil {
			t.Fatal("no report-data block")
		}
		var data pageData
		if err := json.Unmarshal([]byte(m[1]), &data); err != nil {
			t.Fatalf("report-data is not JSON: %v", err)
		}
		var js bytes.Buffer
		if err := WriteJSON(&js, r); err != nil {
			t.Fatal(err)
		}
	})
}
