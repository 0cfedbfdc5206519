package receiver

import (
	"errors"
	"fmt"
)

// ErrMalformed reports a request that is not an OTLP ExportTraceServiceRequest
// in the protobuf wire format.
var ErrMalformed = errors.New("malformed OTLP trace request")

// Resource is what Scan found in one ResourceSpans of a request.
type Resource struct {
	// Service is the resource's service.name attribute, or "" when it is
	// missing or not a string.
	Service string
	// Host is the resource's host.name attribute, or "" when it is missing
	// or not a string.
	Host string
	// Spans counts the spans of the resource.
	Spans int
	// Bytes is the encoded size of the ResourceSpans in the request.
	Bytes int
}

// Scan checks that req is an OTLP ExportTraceServiceRequest (the protobuf
// wire format) and appends one Resource per ResourceSpans to dst.
//
// Scan accepts exactly the requests that pdata's
// ptraceotlp.ExportRequest.UnmarshalProto accepts, and counts spans as pdata
// does after that call (a ResourceSpans without scope_spans falls back to the
// deprecated field 1000), so every request it passes decodes later. It walks
// every nested message once without decoding or allocating, which costs a
// fraction of a full decode. The attribute values it reports follow pdata's
// rules too: the first attribute with the key wins, and within it the last
// value set.
//
// An error matches ErrMalformed; dst may then hold the resources scanned
// before the fault.
func Scan(req []byte, dst []Resource) ([]Resource, error) {
	var s scanner
	return s.scan(req, dst)
}

// recursionLimit is pdata's bound on nested attribute values.
const recursionLimit = 100

// Protobuf wire types.
const (
	wtVarint     = 0
	wtI64        = 1
	wtLen        = 2
	wtStartGroup = 3
	wtEndGroup   = 4
	wtI32        = 5
)

// scanner carries state that outlives one request: an intern table so that
// the service and host names of a steady stream of requests cost no
// allocation.
type scanner struct {
	intern map[string]string
}

// maxInterned bounds the intern table; a sender inventing names cannot grow
// it further.
const maxInterned = 256

func (s *scanner) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if v, ok := s.intern[string(b)]; ok {
		return v
	}
	v := string(b)
	if s.intern == nil {
		s.intern = make(map[string]string)
	}
	if len(s.intern) >= maxInterned {
		clear(s.intern)
	}
	s.intern[v] = v
	return v
}

type scanError struct {
	where string
	what  string
}

func (e *scanError) Error() string        { return ErrMalformed.Error() + ": " + e.where + ": " + e.what }
func (e *scanError) Is(target error) bool { return target == ErrMalformed }

// Positions returned by the field helpers when the field is bad.
const (
	bad      = -1 // truncated, or not of the field's wire type
	badIDLen = -2 // an id that is neither empty nor of its size
)

// fieldError describes the bad field num of a message.
func fieldError(where string, num int32, wt int8, pos int) error {
	what := fmt.Sprintf("field %d (wire type %d) is truncated or of the wrong wire type", num, wt)
	if pos == badIDLen {
		what = fmt.Sprintf("field %d is an id of the wrong length", num)
	}
	return &scanError{where: where, what: what}
}

func tagError(where string) error {
	return &scanError{where: where, what: "truncated or invalid field tag"}
}

func depthError(where string) error {
	return &scanError{where: where, what: "attribute values nested too deep"}
}

// varintSlow decodes a base-128 varint at b[i:] as pdata does: at most ten
// bytes, bits beyond 64 ignored. It returns the position after it, or bad.
func varintSlow(b []byte, i int) (uint64, int) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if i >= len(b) {
			return 0, bad
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i
		}
	}
	return 0, bad
}

// tag decodes a field tag at b[i:]. Like pdata it keeps the low 32 bits of
// the field number and refuses numbers that are then not positive. The
// position is bad on error.
func tag(b []byte, i int) (int32, int8, int) {
	if i < len(b) {
		if c := b[i]; c < 0x80 && c >= 8 {
			return int32(c >> 3), int8(c & 7), i + 1
		}
	}
	return tagSlow(b, i)
}

func tagSlow(b []byte, i int) (int32, int8, int) {
	v, i := varintSlow(b, i)
	if i < 0 {
		return 0, 0, bad
	}
	num := int32(v >> 3)
	if num <= 0 {
		return 0, 0, bad
	}
	return num, int8(v & 7), i
}

// length returns the bounds of the payload of a length-delimited field
// whose length starts at b[i:]; end is bad on error.
func length(b []byte, i int) (start, end int) {
	if i < len(b) {
		if c := b[i]; c < 0x80 {
			if end := i + 1 + int(c); end <= len(b) {
				return i + 1, end
			}
			return 0, bad
		}
	}
	return lengthSlow(b, i)
}

func lengthSlow(b []byte, i int) (int, int) {
	v, i := varintSlow(b, i)
	if i < 0 {
		return 0, bad
	}
	n := int(v)
	if n < 0 {
		return 0, bad
	}
	end := i + n
	if end < 0 || end > len(b) {
		return 0, bad
	}
	return i, end
}

// The field helpers check the wire type of a known field whose value starts
// at b[i:] and return the position after it, or bad.

func lenField(b []byte, i int, wt int8) (start, end int) {
	if wt != wtLen {
		return 0, bad
	}
	return length(b, i)
}

func varintField(b []byte, i int, wt int8) int {
	if wt != wtVarint {
		return bad
	}
	if i < len(b) && b[i] < 0x80 {
		return i + 1
	}
	_, i = varintSlow(b, i)
	return i
}

func fixedField(b []byte, i int, wt, want int8) int {
	if wt != want {
		return bad
	}
	n := 8
	if want == wtI32 {
		n = 4
	}
	if i+n > len(b) {
		return bad
	}
	return i + n
}

// idField checks a trace or span id: empty or size bytes.
func idField(b []byte, i int, wt int8, size int) int {
	start, end := lenField(b, i, wt)
	if end < 0 {
		return bad
	}
	if n := end - start; n != 0 && n != size {
		return badIDLen
	}
	return end
}

// skip passes over a field of an unknown number with wire type wt at b[i:],
// with pdata's rules (including its handling of groups). It returns the
// position after the field, or bad.
func skip(b []byte, i int, wt int8) int {
	depth := 0
	for i < len(b) {
		switch wt {
		case wtVarint:
			_, i = varintSlow(b, i)
			return i
		case wtI64:
			return fixedField(b, i, wt, wtI64)
		case wtLen:
			_, end := length(b, i)
			return end
		case wtStartGroup:
			depth++
		case wtEndGroup:
			if depth == 0 {
				return bad
			}
			depth--
		case wtI32:
			return fixedField(b, i, wt, wtI32)
		default:
			return bad
		}
		if depth == 0 {
			return i
		}
		_, wt, i = tag(b, i)
		if i < 0 {
			return bad
		}
	}
	return bad
}

func (s *scanner) scan(b []byte, dst []Resource) ([]Resource, error) {
	const where = "ExportTraceServiceRequest"
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return dst, tagError(where)
		}
		if num == 1 {
			start, end := lenField(b, j, wt)
			if end < 0 {
				return dst, fieldError(where, num, wt, end)
			}
			r := Resource{Bytes: end - start}
			if err := s.resourceSpans(b[start:end], &r); err != nil {
				return dst, err
			}
			dst = append(dst, r)
			i = end
			continue
		}
		if i = skip(b, j, wt); i < 0 {
			return dst, fieldError(where, num, wt, i)
		}
	}
	return dst, nil
}

func (s *scanner) resourceSpans(b []byte, r *Resource) error {
	const where = "ResourceSpans"
	var scopes, spans, deprecatedSpans int
	var attrs resourceAttrs
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return tagError(where)
		}
		switch num {
		case 1, 2, 1000:
			start, end := lenField(b, j, wt)
			if end < 0 {
				return fieldError(where, num, wt, end)
			}
			var err error
			switch num {
			case 1:
				err = scanResource(b[start:end], &attrs)
			case 2:
				var n int
				n, err = scanScopeSpans(b[start:end])
				scopes++
				spans += n
			default:
				var n int
				n, err = scanScopeSpans(b[start:end])
				deprecatedSpans += n
			}
			if err != nil {
				return err
			}
			i = end
		case 3:
			_, i = lenField(b, j, wt)
		default:
			i = skip(b, j, wt)
		}
		if i < 0 {
			return fieldError(where, num, wt, i)
		}
	}
	if scopes == 0 {
		spans = deprecatedSpans
	}
	r.Spans = spans
	r.Service = s.str(attrs.service)
	r.Host = s.str(attrs.host)
	return nil
}

// resourceAttrs collects the resource attributes Scan reports. As with
// pdata's Map.Get, the first attribute with a key decides.
type resourceAttrs struct {
	service, host         []byte
	haveService, haveHost bool
}

func scanResource(b []byte, attrs *resourceAttrs) error {
	const where = "Resource"
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return tagError(where)
		}
		switch num {
		case 1:
			start, end := lenField(b, j, wt)
			if end < 0 {
				i = end
				break
			}
			key, str, isStr, err := scanKeyValue(b[start:end], 0)
			if err != nil {
				return err
			}
			switch {
			case !attrs.haveService && string(key) == "service.name":
				attrs.haveService = true
				if isStr {
					attrs.service = str
				}
			case !attrs.haveHost && string(key) == "host.name":
				attrs.haveHost = true
				if isStr {
					attrs.host = str
				}
			}
			i = end
		case 2:
			i = varintField(b, j, wt)
		case 3:
			start, end := lenField(b, j, wt)
			if end < 0 {
				i = end
				break
			}
			if err := scanStringFields("EntityRef", b[start:end], 4); err != nil {
				return err
			}
			i = end
		default:
			i = skip(b, j, wt)
		}
		if i < 0 {
			return fieldError(where, num, wt, i)
		}
	}
	return nil
}

// scanStringFields checks a message whose fields 1..maxField are all strings or
// bytes.
func scanStringFields(where string, b []byte, maxField int32) error {
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return tagError(where)
		}
		if num <= maxField {
			_, i = lenField(b, j, wt)
		} else {
			i = skip(b, j, wt)
		}
		if i < 0 {
			return fieldError(where, num, wt, i)
		}
	}
	return nil
}

func scanScopeSpans(b []byte) (int, error) {
	const where = "ScopeSpans"
	n := 0
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return n, tagError(where)
		}
		switch num {
		case 1, 2:
			start, end := lenField(b, j, wt)
			if end < 0 {
				i = end
				break
			}
			var err error
			if num == 2 {
				err = scanSpan(b[start:end])
				n++
			} else {
				err = scanScope(b[start:end])
			}
			if err != nil {
				return n, err
			}
			i = end
		case 3:
			_, i = lenField(b, j, wt)
		default:
			i = skip(b, j, wt)
		}
		if i < 0 {
			return n, fieldError(where, num, wt, i)
		}
	}
	return n, nil
}

func scanScope(b []byte) error {
	const where = "InstrumentationScope"
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return tagError(where)
		}
		var err error
		switch num {
		case 1, 2:
			_, i = lenField(b, j, wt)
		case 3:
			i, err = scanAttribute(b, j, wt)
		case 4:
			i = varintField(b, j, wt)
		default:
			i = skip(b, j, wt)
		}
		if err != nil {
			return err
		}
		if i < 0 {
			return fieldError(where, num, wt, i)
		}
	}
	return nil
}

// scanAttribute checks the KeyValue whose length starts at b[i:] and returns the
// position after it.
func scanAttribute(b []byte, i int, wt int8) (int, error) {
	start, end := lenField(b, i, wt)
	if end < 0 || simpleAttribute(b[start:end]) {
		return end, nil
	}
	if _, _, _, err := scanKeyValue(b[start:end], 0); err != nil {
		return bad, err
	}
	return end, nil
}

// simpleAttribute reports whether b is a KeyValue of the common shape: a
// short key and a value holding one short string, an int, a bool or a
// double, in either order (pdata writes the value first), and nothing else.
// Such a KeyValue is valid without further checks; anything else goes
// through keyValue.
func simpleAttribute(b []byte) bool {
	if len(b) < 4 || b[1] >= 0x80 {
		return false
	}
	n := 2 + int(b[1]) // the second field
	if n+2 > len(b) || b[n+1] >= 0x80 || n+2+int(b[n+1]) != len(b) {
		return false
	}
	var v []byte
	switch {
	case b[0] == 1<<3|wtLen && b[n] == 2<<3|wtLen:
		v = b[n+2:]
	case b[0] == 2<<3|wtLen && b[n] == 1<<3|wtLen:
		v = b[2:n]
	default:
		return false
	}
	if len(v) < 2 {
		return false
	}
	switch v[0] {
	case 1<<3 | wtLen: // string_value
		return v[1] < 0x80 && 2+int(v[1]) == len(v)
	case 2<<3 | wtVarint, 3<<3 | wtVarint: // bool_value, int_value
		for k := 1; k < len(v) && k <= 10; k++ {
			if v[k] < 0x80 {
				return k+1 == len(v)
			}
		}
		return false
	case 4<<3 | wtI64: // double_value
		return len(v) == 9
	}
	return false
}

func scanSpan(b []byte) error {
	const where = "Span"
	for i := 0; i < len(b); {
		// tag, by hand: the compiler does not inline it here.
		var num int32
		var wt int8
		var j int
		if c := b[i]; c < 0x80 && c >= 8 {
			num, wt, j = int32(c>>3), int8(c&7), i+1
		} else if num, wt, j = tagSlow(b, i); j < 0 {
			return tagError(where)
		}
		var err error
		switch num {
		case 1:
			i = idField(b, j, wt, 16)
		case 2, 4:
			i = idField(b, j, wt, 8)
		case 3, 5:
			_, i = lenField(b, j, wt)
		case 6, 10, 12, 14:
			i = varintField(b, j, wt)
		case 7, 8:
			i = fixedField(b, j, wt, wtI64)
		case 9:
			i, err = scanAttribute(b, j, wt)
		case 11, 13, 15:
			start, end := lenField(b, j, wt)
			if end < 0 {
				i = end
				break
			}
			switch num {
			case 11:
				err = scanEvent(b[start:end])
			case 13:
				err = scanLink(b[start:end])
			default:
				err = scanStatus(b[start:end])
			}
			i = end
		case 16:
			i = fixedField(b, j, wt, wtI32)
		default:
			i = skip(b, j, wt)
		}
		if err != nil {
			return err
		}
		if i < 0 {
			return fieldError(where, num, wt, i)
		}
	}
	return nil
}

func scanEvent(b []byte) error {
	const where = "Span.Event"
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return tagError(where)
		}
		var err error
		switch num {
		case 1:
			i = fixedField(b, j, wt, wtI64)
		case 2:
			_, i = lenField(b, j, wt)
		case 3:
			i, err = scanAttribute(b, j, wt)
		case 4:
			i = varintField(b, j, wt)
		default:
			i = skip(b, j, wt)
		}
		if err != nil {
			return err
		}
		if i < 0 {
			return fieldError(where, num, wt, i)
		}
	}
	return nil
}

func scanLink(b []byte) error {
	const where = "Span.Link"
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return tagError(where)
		}
		var err error
		switch num {
		case 1:
			i = idField(b, j, wt, 16)
		case 2:
			i = idField(b, j, wt, 8)
		case 3:
			_, i = lenField(b, j, wt)
		case 4:
			i, err = scanAttribute(b, j, wt)
		case 5:
			i = varintField(b, j, wt)
		case 6:
			i = fixedField(b, j, wt, wtI32)
		default:
			i = skip(b, j, wt)
		}
		if err != nil {
			return err
		}
		if i < 0 {
			return fieldError(where, num, wt, i)
		}
	}
	return nil
}

func scanStatus(b []byte) error {
	const where = "Status"
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return tagError(where)
		}
		switch num {
		case 2:
			_, i = lenField(b, j, wt)
		case 3:
			i = varintField(b, j, wt)
		default:
			i = skip(b, j, wt)
		}
		if i < 0 {
			return fieldError(where, num, wt, i)
		}
	}
	return nil
}

// scanKeyValue checks a KeyValue at nesting depth and returns its key and, when
// its value is a string, that string (pdata's rules: the last key and the
// last value set win).
func scanKeyValue(b []byte, depth int) (key, str []byte, isStr bool, err error) {
	const where = "KeyValue"
	if depth >= recursionLimit {
		return nil, nil, false, depthError(where)
	}
	depth++
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return nil, nil, false, tagError(where)
		}
		switch num {
		case 1:
			var start int
			if start, i = lenField(b, j, wt); i >= 0 {
				key = b[start:i]
			}
		case 2:
			start, end := lenField(b, j, wt)
			if end < 0 {
				i = end
				break
			}
			which, s, err := scanAnyValue(b[start:end], depth)
			if err != nil {
				return nil, nil, false, err
			}
			if which != 0 {
				isStr, str = which == 1, s
			}
			i = end
		case 3:
			i = varintField(b, j, wt)
		default:
			i = skip(b, j, wt)
		}
		if i < 0 {
			return nil, nil, false, fieldError(where, num, wt, i)
		}
	}
	return key, str, isStr, nil
}

// scanAnyValue checks an AnyValue at nesting depth and returns the number of the
// last oneof field it sets (0 for none) and, when that is string_value, the
// string.
func scanAnyValue(b []byte, depth int) (which int32, str []byte, err error) {
	const where = "AnyValue"
	if depth >= recursionLimit {
		return 0, nil, depthError(where)
	}
	depth++
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return 0, nil, tagError(where)
		}
		switch num {
		case 1:
			var start int
			if start, i = lenField(b, j, wt); i >= 0 {
				str = b[start:i]
			}
		case 2, 3, 8:
			i = varintField(b, j, wt)
		case 4:
			i = fixedField(b, j, wt, wtI64)
		case 7:
			_, i = lenField(b, j, wt)
		case 5, 6:
			start, end := lenField(b, j, wt)
			if end < 0 {
				i = end
				break
			}
			if err := scanValueList(b[start:end], depth, num == 6); err != nil {
				return 0, nil, err
			}
			i = end
		default:
			if i = skip(b, j, wt); i < 0 {
				return 0, nil, fieldError(where, num, wt, i)
			}
			continue
		}
		if i < 0 {
			return 0, nil, fieldError(where, num, wt, i)
		}
		which = num
	}
	if which != 1 {
		str = nil
	}
	return which, str, nil
}

// scanValueList checks an ArrayValue (field 1: AnyValue) or, with kv, a
// KeyValueList (field 1: KeyValue) at nesting depth.
func scanValueList(b []byte, depth int, kv bool) error {
	where := "ArrayValue"
	if kv {
		where = "KeyValueList"
	}
	if depth >= recursionLimit {
		return depthError(where)
	}
	depth++
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return tagError(where)
		}
		if num != 1 {
			if i = skip(b, j, wt); i < 0 {
				return fieldError(where, num, wt, i)
			}
			continue
		}
		start, end := lenField(b, j, wt)
		if end < 0 {
			return fieldError(where, num, wt, end)
		}
		var err error
		if kv {
			_, _, _, err = scanKeyValue(b[start:end], depth)
		} else {
			_, _, err = scanAnyValue(b[start:end], depth)
		}
		if err != nil {
			return err
		}
		i = end
	}
	return nil
}
