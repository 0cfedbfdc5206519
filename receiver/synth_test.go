package receiver

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// synthBatch is a synthetic request shaped like the shared ingest
// benchmark's (../shared/bench/otlp-ingest): one resource with 11
// attributes, traces of 10 spans (an HTTP server root, database, HTTP client
// and internal children) with about 10 attributes each, 2% errors with an
// exception event. ids lists where each id sits in the encoding, so that
// stamp can make every send unique as real traffic is.
type synthBatch struct {
	req   []byte
	spans int
	ids   [][]int // per id: offsets of its occurrences
	idLen []int
}

var synthServices = []string{"checkout", "cart", "payment", "inventory", "frontend", "shipping"}

func newSynthBatch(seed uint64, spans int) *synthBatch {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	svc := synthServices[int(seed)%len(synthServices)]
	a := rs.Resource().Attributes()
	a.PutStr("service.name", svc)
	a.PutStr("service.namespace", "shop")
	a.PutStr("service.version", "2.14.3")
	a.PutStr("service.instance.id", fmt.Sprintf("%s-%08x", svc, r.Uint32()))
	a.PutStr("host.name", fmt.Sprintf("ip-10-0-%d-%d.ec2.internal", r.IntN(8), r.IntN(250)))
	a.PutStr("deployment.environment.name", "production")
	a.PutStr("telemetry.sdk.name", "opentelemetry")
	a.PutStr("telemetry.sdk.language", "go")
	a.PutStr("telemetry.sdk.version", "1.38.0")
	a.PutStr("k8s.pod.name", fmt.Sprintf("%s-7d9f8b6c4-%05x", svc, r.IntN(1<<20)))
	a.PutStr("bench.source", "trace-capture")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	ss.Scope().SetVersion("0.61.0")

	var ids [][]byte
	newID := func(n int) []byte {
		id := make([]byte, n)
		for i := range id {
			id[i] = byte(r.Uint32())
		}
		id[0] |= 1
		ids = append(ids, id)
		return id
	}
	base := time.Now().Add(-time.Minute).UnixNano()
	routes := []string{"/api/v1/orders/{id}", "/api/v1/cart", "/api/v2/checkout", "/api/v1/products", "/healthz"}
	for t := 0; t < max(1, spans/10); t++ {
		tid := pcommon.TraceID(newID(16))
		start := base + int64(t)*int64(3*time.Millisecond)
		dur := int64(5+r.IntN(400)) * int64(time.Millisecond)
		root := ss.Spans().AppendEmpty()
		root.SetTraceID(tid)
		rootID := pcommon.SpanID(newID(8))
		root.SetSpanID(rootID)
		route := routes[r.IntN(len(routes))]
		root.SetName("GET " + route)
		root.SetKind(ptrace.SpanKindServer)
		root.SetStartTimestamp(pcommon.Timestamp(start))
		root.SetEndTimestamp(pcommon.Timestamp(start + dur))
		ra := root.Attributes()
		ra.PutStr("http.request.method", "GET")
		ra.PutStr("http.route", route)
		ra.PutStr("url.path", fmt.Sprintf("/api/v1/orders/%d", r.IntN(10_000_000)))
		ra.PutStr("url.scheme", "https")
		ra.PutInt("http.response.status_code", 200)
		ra.PutStr("server.address", "api.shop.example.com")
		ra.PutInt("server.port", 443)
		ra.PutStr("client.address", fmt.Sprintf("203.0.%d.%d", r.IntN(256), r.IntN(256)))
		ra.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0")
		ra.PutStr("network.protocol.version", "1.1")
		ra.PutInt("http.request.body.size", int64(r.IntN(4096)))
		if r.IntN(50) == 0 {
			root.Status().SetCode(ptrace.StatusCodeError)
			root.Status().SetMessage("upstream request failed")
			ev := root.Events().AppendEmpty()
			ev.SetName("exception")
			ev.SetTimestamp(pcommon.Timestamp(start + dur - 1000))
			ev.Attributes().PutStr("exception.type", "io.grpc.StatusRuntimeException")
			ev.Attributes().PutStr("exception.message", "UNAVAILABLE: upstream connect error")
		}
		parent := rootID
		for c := 1; c < 10; c++ {
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(tid)
			sp.SetSpanID(pcommon.SpanID(newID(8)))
			sp.SetParentSpanID(parent)
			cs := start + int64(c)*int64(dur/12)
			sp.SetStartTimestamp(pcommon.Timestamp(cs))
			sp.SetEndTimestamp(pcommon.Timestamp(cs + dur/14))
			sa := sp.Attributes()
			switch c % 3 {
			case 0:
				sp.SetName("SELECT orders")
				sp.SetKind(ptrace.SpanKindClient)
				sa.PutStr("db.system.name", "postgresql")
				sa.PutStr("db.namespace", "shop")
				sa.PutStr("db.collection.name", "orders")
				sa.PutStr("db.operation.name", "SELECT")
				sa.PutStr("db.query.text", "SELECT id, status, total FROM orders WHERE customer_id = $1 LIMIT 50")
				sa.PutStr("server.address", "orders-db.internal")
				sa.PutInt("server.port", 5432)
				sa.PutInt("db.response.returned_rows", int64(r.IntN(50)))
			case 1:
				sp.SetName("POST")
				sp.SetKind(ptrace.SpanKindClient)
				sa.PutStr("http.request.method", "POST")
				sa.PutStr("url.full", fmt.Sprintf("http://payment.billing.svc:8080/v1/authorize/%d", r.IntN(1_000_000)))
				sa.PutStr("server.address", "payment.billing.svc")
				sa.PutInt("server.port", 8080)
				sa.PutInt("http.response.status_code", 200)
				sa.PutStr("network.protocol.version", "1.1")
				sa.PutInt("http.request.resend_count", 0)
			default:
				sp.SetName("render.response")
				sp.SetKind(ptrace.SpanKindInternal)
				sa.PutStr("code.function.name", "main.(*handler).render")
				sa.PutStr("code.file.path", "/src/internal/handler/render.go")
				sa.PutInt("code.line.number", int64(100+r.IntN(300)))
				sa.PutInt("app.items", int64(r.IntN(20)))
				sa.PutBool("app.cache.hit", r.IntN(2) == 0)
				parent = sp.SpanID()
			}
		}
	}
	req, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		panic(err)
	}
	b := &synthBatch{req: req, spans: td.SpanCount()}
	offsets := idOffsets(req)
	for _, id := range ids {
		b.ids = append(b.ids, offsets[string(id)])
		b.idLen = append(b.idLen, len(id))
	}
	return b
}

// idOffsets maps every trace and span id of the spans in req to where it
// occurs (span ids also as parents).
func idOffsets(req []byte) map[string][]int {
	out := make(map[string][]int)
	var walk func(b []byte, base, depth int)
	walk = func(b []byte, base, depth int) {
		for i := 0; i < len(b); {
			num, wt, j := tag(b, i)
			if wt != wtLen {
				i = skip(b, j, wt)
				continue
			}
			start, end := length(b, j)
			switch {
			case depth < 3 && (num == 1 && depth == 0 || num == 2):
				walk(b[start:end], base+start, depth+1)
			case depth == 3 && (num == 1 || num == 2 || num == 4):
				id := string(b[start:end])
				out[id] = append(out[id], base+start)
			}
			i = end
		}
	}
	walk(req, 0, 0)
	return out
}

// stamp copies the batch into dst with fresh ids drawn from seq.
func (b *synthBatch) stamp(dst []byte, seq uint64) []byte {
	dst = append(dst[:0], b.req...)
	var id [16]byte
	for i, offs := range b.ids {
		seq = seq*6364136223846793005 + 1442695040888963407
		binary.LittleEndian.PutUint64(id[:8], seq)
		binary.LittleEndian.PutUint64(id[8:], seq^0xa5a5a5a5a5a5a5a5*uint64(i+1))
		id[0] |= 1
		for _, o := range offs {
			copy(dst[o:o+b.idLen[i]], id[:b.idLen[i]])
		}
	}
	return dst
}
