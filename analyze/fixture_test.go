package analyze

import (
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// fspan describes one span of a constructed trace. Times are milliseconds
// from fixtureBase; ids are small integers turned into OTLP ids.
type fspan struct {
	Svc, Host  string
	Trace      int
	ID, Parent int // Parent 0: root
	Name       string
	Kind       ptrace.SpanKind
	Start, End float64
	Attrs      map[string]any
	Err        string // status ERROR with this message ("-" for none)
	Links      int
}

var fixtureBase = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func tid(n int) pcommon.TraceID {
	var t pcommon.TraceID
	t[0] = 0xab
	binary.BigEndian.PutUint64(t[8:], uint64(n))
	return t
}

func sid(n int) pcommon.SpanID {
	var s pcommon.SpanID
	s[0] = 0xcd
	binary.BigEndian.PutUint32(s[4:], uint32(n))
	return s
}

func tidHex(n int) string { t := tid(n); return fmt.Sprintf("%x", t[:]) }

func ts(ms float64) pcommon.Timestamp {
	return pcommon.NewTimestampFromTime(fixtureBase.Add(time.Duration(ms * float64(time.Millisecond))))
}

// fixtureRecord encodes spans as one ExportTraceServiceRequest, one
// ResourceSpans per (service, host) in first-seen order.
func fixtureRecord(spans ...fspan) []byte {
	td := ptrace.NewTraces()
	scopes := map[[2]string]ptrace.SpanSlice{}
	for _, s := range spans {
		k := [2]string{s.Svc, s.Host}
		ss, ok := scopes[k]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			if s.Svc != "" {
				rs.Resource().Attributes().PutStr("service.name", s.Svc)
			}
			if s.Host != "" {
				rs.Resource().Attributes().PutStr("host.name", s.Host)
			}
			sc := rs.ScopeSpans().AppendEmpty()
			sc.Scope().SetName("fixture")
			ss = sc.Spans()
			scopes[k] = ss
		}
		sp := ss.AppendEmpty()
		sp.SetTraceID(tid(s.Trace))
		sp.SetSpanID(sid(s.ID))
		if s.Parent != 0 {
			sp.SetParentSpanID(sid(s.Parent))
		}
		sp.SetName(s.Name)
		sp.SetKind(s.Kind)
		sp.SetStartTimestamp(ts(s.Start))
		sp.SetEndTimestamp(ts(s.End))
		keys := make([]string, 0, len(s.Attrs))
		for k := range s.Attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch v := s.Attrs[k].(type) {
			case string:
				sp.Attributes().PutStr(k, v)
			case int:
				sp.Attributes().PutInt(k, int64(v))
			case bool:
				sp.Attributes().PutBool(k, v)
			case float64:
				sp.Attributes().PutDouble(k, v)
			}
		}
		sp.Attributes().PutStr("ignored.attribute", "not kept")
		sp.Events().AppendEmpty().SetName("an event")
		if s.Err != "" {
			sp.Status().SetCode(ptrace.StatusCodeError)
			if s.Err != "-" {
				sp.Status().SetMessage(s.Err)
			}
		}
		for i := 0; i < s.Links; i++ {
			l := sp.Links().AppendEmpty()
			l.SetTraceID(tid(9999))
			l.SetSpanID(sid(9999))
		}
	}
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		panic(err)
	}
	return b
}
