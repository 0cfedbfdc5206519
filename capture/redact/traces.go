package redact

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// traces redacts td in place. Only attribute values, span and event names
// and status messages change: ids, times, kinds, status codes, flags,
// counts, scopes and schema URLs stay as they are.
func (j *job) traces(td ptrace.Traces) (spans int64) {
	redactNames := j.e.pol.spanNames == SpanNamesRedact
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		j.attrs(rs.Resource().Attributes())
		sss := rs.ScopeSpans()
		for k := 0; k < sss.Len(); k++ {
			ss := sss.At(k)
			j.attrs(ss.Scope().Attributes())
			sps := ss.Spans()
			for n := 0; n < sps.Len(); n++ {
				sp := sps.At(n)
				spans++
				if redactNames {
					if name := sp.Name(); name != "" {
						if out := j.spanName(name); out != name {
							sp.SetName(out)
						}
					}
				}
				j.attrs(sp.Attributes())
				if msg := sp.Status().Message(); msg != "" {
					if out := j.scrub(msg); out != msg {
						sp.Status().SetMessage(out)
					}
				}
				evs := sp.Events()
				for e := 0; e < evs.Len(); e++ {
					ev := evs.At(e)
					if name := ev.Name(); name != "" {
						if out := j.scrub(name); out != name {
							ev.SetName(out)
						}
					}
					j.attrs(ev.Attributes())
				}
				lks := sp.Links()
				for l := 0; l < lks.Len(); l++ {
					j.attrs(lks.At(l).Attributes())
				}
			}
		}
	}
	return spans
}

// attrs redacts an attribute map in place.
func (j *job) attrs(m pcommon.Map) {
	if m.Len() == 0 {
		return
	}
	drop := false
	m.Range(func(k string, v pcommon.Value) bool {
		kind := j.e.pol.kindOf(k)
		if kind == KindDrop {
			drop = true
			return true
		}
		j.value(kind, v)
		return true
	})
	if drop && !j.learn {
		m.RemoveIf(func(k string, _ pcommon.Value) bool {
			if j.e.pol.kindOf(k) == KindDrop {
				j.count(KindDrop)
				return true
			}
			return false
		})
	}
}

// value redacts one attribute value as kind. Numbers and booleans are
// never changed; bytes are emptied unless kept.
func (j *job) value(kind string, v pcommon.Value) {
	if kind == KindKeep {
		return
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s := v.Str()
		if out := j.apply(kind, s); out != s {
			v.SetStr(out)
		}
	case pcommon.ValueTypeBytes:
		if v.Bytes().Len() > 0 && !j.learn {
			j.count("bytes")
			v.SetEmptyBytes()
		}
	case pcommon.ValueTypeSlice:
		sl := v.Slice()
		for i := 0; i < sl.Len(); i++ {
			j.value(kind, sl.At(i))
		}
	case pcommon.ValueTypeMap:
		switch kind {
		case KindScrub:
			j.attrs(v.Map()) // each key by its own rule
		default:
			v.Map().Range(func(_ string, x pcommon.Value) bool {
				j.value(kind, x)
				return true
			})
		}
	}
}
