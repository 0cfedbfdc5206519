package analyze

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
)

// This file is the lean OTLP protobuf decoder. It walks the wire format of
// ExportTraceServiceRequest directly and keeps only what the analysis
// needs: ids, name, kind, times, status, the attributes listed in attrs.go,
// the link count and the resource's service.name / host.name /
// service.instance.id. Everything else (events, scopes, other attributes)
// is skipped without being decoded. A malformed record is reported as an
// error, but every span fully decoded before the fault is kept.
//
// Field numbers (opentelemetry-proto, trace/v1, common/v1, resource/v1):
//
//	ExportTraceServiceRequest: 1 resource_spans
//	ResourceSpans: 1 resource, 2 scope_spans
//	Resource: 1 attributes
//	ScopeSpans: 2 spans
//	Span: 1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind,
//	      7 start_time_unix_nano (fixed64), 8 end_time_unix_nano (fixed64),
//	      9 attributes, 13 links, 15 status
//	Status: 2 message, 3 code
//	KeyValue: 1 key, 2 value
//	AnyValue: 1 string, 2 bool, 3 int, 4 double, 5 array, 6 kvlist, 7 bytes

var errMalformed = errors.New("malformed protobuf")

const (
	wireVarint = 0
	wireI64    = 1
	wireLen    = 2
	wireI32    = 5
)

// decodeStats counts what the decoder had to drop.
type decodeStats struct {
	invalidSpans int64 // spans without a valid trace or span id
	badTimes     int64 // spans whose end is before their start (or unset)
	spans        int64 // spans kept
}

// keptKV is a kept attribute of the span being decoded; val points into
// the record.
type keptKV struct {
	key uint8
	val []byte
}

// maxRawSets bounds the cache of raw attribute bytes → attribute set: past
// it, attribute values are interned one by one.
const maxRawSets = 1 << 20

type decoder struct {
	st     *store
	stats  decodeStats
	packed []byte   // attribute scratch: 5 bytes per kept attribute
	raw    []byte   // the kept attributes' raw KeyValue bytes, length-prefixed
	kept   []keptKV // the kept attributes of the current span
	rawSet map[string]int32
	num    []byte // number formatting scratch
}

// varint reads a varint at b[i:], returning the value and the index after
// it, or -1 when b ends or the varint is longer than 10 bytes.
func varint(b []byte, i int) (uint64, int) {
	if i < len(b) && b[i] < 0x80 {
		return uint64(b[i]), i + 1
	}
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if i >= len(b) {
			return 0, -1
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i
		}
	}
	return 0, -1
}

// field reads one field header and returns the field number, wire type, the
// payload for length-delimited fields (or nil), the scalar value for varint
// and fixed fields, and the index after the field; next = -1 on malformed
// input.
func field(b []byte, i int) (num int, typ int, payload []byte, val uint64, next int) {
	tag, i := varint(b, i)
	if i < 0 {
		return 0, 0, nil, 0, -1
	}
	num, typ = int(tag>>3), int(tag&7)
	if num <= 0 {
		return 0, 0, nil, 0, -1
	}
	switch typ {
	case wireVarint:
		val, i = varint(b, i)
		return num, typ, nil, val, i
	case wireI64:
		if len(b)-i < 8 {
			return 0, 0, nil, 0, -1
		}
		return num, typ, nil, binary.LittleEndian.Uint64(b[i:]), i + 8
	case wireI32:
		if len(b)-i < 4 {
			return 0, 0, nil, 0, -1
		}
		return num, typ, nil, uint64(binary.LittleEndian.Uint32(b[i:])), i + 4
	case wireLen:
		var n uint64
		n, i = varint(b, i)
		if i < 0 || n > uint64(len(b)-i) {
			return 0, 0, nil, 0, -1
		}
		return num, typ, b[i : i+int(n)], 0, i + int(n)
	}
	return 0, 0, nil, 0, -1 // groups (3, 4) and reserved types are not used by OTLP
}

// request decodes one ExportTraceServiceRequest.
func (d *decoder) request(b []byte) error {
	var firstErr error
	for i := 0; i < len(b); {
		num, typ, p, _, next := field(b, i)
		if next < 0 {
			return errMalformed
		}
		i = next
		if num == 1 && typ == wireLen {
			if err := d.resourceSpans(p); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

func (d *decoder) resourceSpans(b []byte) error {
	// The resource is field 1 and usually first, but protobuf allows any
	// order: find it before decoding spans.
	res := int32(-1)
	for i := 0; i < len(b); {
		num, typ, p, _, next := field(b, i)
		if next < 0 {
			return errMalformed
		}
		i = next
		if num == 1 && typ == wireLen {
			var err error
			if res, err = d.resource(p); err != nil {
				return err
			}
		}
	}
	if res < 0 {
		res = d.st.resource(0, 0, 0)
	}
	var firstErr error
	for i := 0; i < len(b); {
		num, typ, p, _, next := field(b, i)
		if next < 0 {
			return errMalformed
		}
		i = next
		if num == 2 && typ == wireLen {
			if err := d.scopeSpans(p, res); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

func (d *decoder) resource(b []byte) (int32, error) {
	var svc, host, inst int32
	for i := 0; i < len(b); {
		num, typ, p, _, next := field(b, i)
		if next < 0 {
			return -1, errMalformed
		}
		i = next
		if num != 1 || typ != wireLen {
			continue
		}
		k, v, ok := keyValue(p)
		if !ok {
			return -1, errMalformed
		}
		switch resourceAttrKey(k) {
		case resServiceName:
			svc = d.value(v)
		case resHostName:
			host = d.value(v)
		case resInstanceID:
			inst = d.value(v)
		}
	}
	return d.st.resource(svc, host, inst), nil
}

// keyValue splits a KeyValue into its key and its AnyValue bytes.
func keyValue(b []byte) (key, val []byte, ok bool) {
	for i := 0; i < len(b); {
		num, typ, p, _, next := field(b, i)
		if next < 0 {
			return nil, nil, false
		}
		i = next
		if typ != wireLen {
			continue
		}
		switch num {
		case 1:
			key = p
		case 2:
			val = p
		}
	}
	return key, val, true
}

// value interns the text form of an AnyValue (strings as they are, numbers
// and booleans formatted; arrays, maps and bytes as a placeholder).
func (d *decoder) value(b []byte) int32 {
	var id int32
	for i := 0; i < len(b); {
		num, typ, p, v, next := field(b, i)
		if next < 0 {
			return id
		}
		i = next
		switch {
		case num == 1 && typ == wireLen:
			id = d.st.intern(p)
		case num == 2 && typ == wireVarint:
			if v != 0 {
				id = d.st.internString("true")
			} else {
				id = d.st.internString("false")
			}
		case num == 3 && typ == wireVarint:
			d.num = strconv.AppendInt(d.num[:0], int64(v), 10)
			id = d.st.intern(d.num)
		case num == 4 && typ == wireI64:
			d.num = strconv.AppendFloat(d.num[:0], math.Float64frombits(v), 'g', -1, 64)
			id = d.st.intern(d.num)
		case num == 5 || num == 6 || num == 7:
			id = d.st.internString("[complex value]")
		}
	}
	return id
}

// stringValue returns the string of an AnyValue holding one, else nil.
func stringValue(b []byte) []byte {
	for i := 0; i < len(b); {
		num, typ, p, _, next := field(b, i)
		if next < 0 {
			return nil
		}
		i = next
		if num == 1 && typ == wireLen {
			return p
		}
	}
	return nil
}

func (d *decoder) scopeSpans(b []byte, res int32) error {
	var firstErr error
	for i := 0; i < len(b); {
		num, typ, p, _, next := field(b, i)
		if next < 0 {
			return errMalformed
		}
		i = next
		if num == 2 && typ == wireLen {
			if err := d.span(p, res); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

func idBytes(p []byte) (int64, bool) {
	if len(p) != 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(p)), true
}

// span decodes one Span and adds it to the store when it has valid ids.
func (d *decoder) span(b []byte, res int32) error {
	var sp span
	sp.res = res
	var tid traceID
	var haveTrace, haveID, badParent bool
	var start, end uint64
	d.raw, d.kept = d.raw[:0], d.kept[:0]
	for i := 0; i < len(b); {
		num, typ, p, v, next := field(b, i)
		if next < 0 {
			return errMalformed
		}
		i = next
		switch num {
		case 1:
			if typ == wireLen && len(p) == 16 {
				tid.hi = binary.BigEndian.Uint64(p)
				tid.lo = binary.BigEndian.Uint64(p[8:])
				haveTrace = tid.hi != 0 || tid.lo != 0
			}
		case 2:
			if typ == wireLen {
				sp.id, haveID = idBytes(p)
				haveID = haveID && sp.id != 0
			}
		case 4:
			if typ == wireLen && len(p) > 0 {
				id, ok := idBytes(p)
				if !ok {
					badParent = true
				} else if id != 0 {
					sp.parent = id
					sp.flags |= flagHasParent
				}
			}
		case 5:
			if typ == wireLen {
				sp.name = d.st.intern(p)
			}
		case 6:
			if typ == wireVarint && v <= kindConsumer {
				sp.kind = uint8(v)
			}
		case 7:
			if typ == wireI64 {
				start = v
			}
		case 8:
			if typ == wireI64 {
				end = v
			}
		case 9:
			if typ == wireLen {
				if err := d.attribute(p); err != nil {
					return err
				}
			}
		case 13:
			if typ == wireLen && sp.links < math.MaxUint8 {
				sp.links++
			}
		case 15:
			if typ == wireLen {
				if err := d.status(p, &sp); err != nil {
					return err
				}
			}
		}
	}
	if !haveTrace || !haveID || badParent {
		d.stats.invalidSpans++
		return nil
	}
	// Timestamps beyond int64 (year 2262) are treated as unset.
	if start > math.MaxInt64 {
		start = 0
	}
	if end > math.MaxInt64 {
		end = 0
	}
	sp.start, sp.end = int64(start), int64(end)
	if sp.end < sp.start || sp.start == 0 {
		d.stats.badTimes++
		if sp.start == 0 {
			sp.start = sp.end
		}
		sp.end = sp.start
	}
	sp.attrs = d.attrSet()
	sp.trace = d.st.trace(tid)
	d.st.add(&sp)
	d.stats.spans++
	return nil
}

// attribute notes one span attribute when its key is one the analysis
// reads. Attributes are kept in arrival order; a repeated key keeps both.
func (d *decoder) attribute(b []byte) error {
	// Fast path: the key comes first (field 1, tag 0x0a) in every encoder
	// we know; most attributes are not kept and need no further parsing.
	if len(b) > 1 && b[0] == 0x0a {
		if n, i := varint(b, 1); i > 0 && n <= uint64(len(b)-i) && spanAttrKey(b[i:i+int(n)]) == attrNone {
			return nil
		}
	}
	k, v, ok := keyValue(b)
	if !ok {
		return errMalformed
	}
	key := spanAttrKey(k)
	if key == attrNone {
		return nil
	}
	d.raw = binary.AppendUvarint(d.raw, uint64(len(b)))
	d.raw = append(d.raw, b...)
	d.kept = append(d.kept, keptKV{key: key, val: v})
	return nil
}

// attrSet returns the attribute set id of the kept attributes: one map
// lookup on their raw bytes when this combination was seen before.
func (d *decoder) attrSet() int32 {
	if len(d.kept) == 0 {
		return 0
	}
	if id, ok := d.rawSet[string(d.raw)]; ok {
		return id
	}
	d.packed = d.packed[:0]
	for _, kv := range d.kept {
		id := d.value(kv.val)
		d.packed = append(d.packed, kv.key, 0, 0, 0, 0)
		binary.LittleEndian.PutUint32(d.packed[len(d.packed)-4:], uint32(id))
		if kv.key == attrHTTPTarget || kv.key == attrURLFull || kv.key == attrHTTPURL {
			if s := stringValue(kv.val); isWatchQuery(s) {
				d.packed = append(d.packed, attrWatchMark, 0, 0, 0, 0)
			}
		}
	}
	id := d.st.attrSet(d.packed)
	if d.rawSet == nil {
		d.rawSet = map[string]int32{}
	}
	if len(d.rawSet) < maxRawSets {
		d.rawSet[string(d.raw)] = id
	}
	return id
}

func (d *decoder) status(b []byte, sp *span) error {
	for i := 0; i < len(b); {
		num, typ, p, v, next := field(b, i)
		if next < 0 {
			return errMalformed
		}
		i = next
		switch {
		case num == 2 && typ == wireLen:
			sp.msg = d.st.intern(p)
		case num == 3 && typ == wireVarint:
			if v <= statusError {
				sp.status = uint8(v)
			}
		}
	}
	return nil
}
