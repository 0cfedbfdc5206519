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

func (e *scanError) Error() string { return ErrMalformed.Error() + ": " + e.where + ": " + e.what }
func (e *scanError) Is(target error) bool { return target == ErrMalformed }

func malformed(where, what string) error { return &scanError{where: where, what: what} }

func badTag(where string) error { return malformed(where, "truncated or invalid field tag") }

func wrongType(where string, field int32, wt int8) error {
	return malformed(where, fmt.Sprintf("field %d has wire type %d", field, wt))
}

func badLen(where string, field int32) error {
	return malformed(where, fmt.Sprintf("field %d: length runs past the end of the message", field))
}

func badValue(where string, field int32) error {
	return malformed(where, fmt.Sprintf("field %d: truncated value", field))
}

// varint decodes a base-128 varint at b[i:] as pdata does: at most ten bytes,
// any bits beyond 64 ignored. It returns the position after it, or -1.
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

// tag decodes a field tag at b[i:]. Like pdata it keeps the low 32 bits of
// the field number and refuses numbers that are then not positive. It
// returns -1 as the position on error.
func tag(b []byte, i int) (int32, int8, int) {
	if i < len(b) && b[i] < 0x80 {
		c := b[i]
		if c < 8 {
			return 0, 0, -1
		}
		return int32(c >> 3), int8(c & 7), i + 1
	}
	v, i := varint(b, i)
	if i < 0 {
		return 0, 0, -1
	}
	num := int32(v >> 3)
	if num <= 0 {
		return 0, 0, -1
	}
	return num, int8(v & 7), i
}

// length decodes the length of a length-delimited field at b[i:] and returns
// the bounds of its payload, or end -1.
func length(b []byte, i int) (int, int) {
	if i < len(b) && b[i] < 0x80 {
		end := i + 1 + int(b[i])
		if end > len(b) {
			return 0, -1
		}
		return i + 1, end
	}
	v, i := varint(b, i)
	if i < 0 {
		return 0, -1
	}
	n := int(v)
	if n < 0 {
		return 0, -1
	}
	end := i + n
	if end < 0 || end > len(b) {
		return 0, -1
	}
	return i, end
}

// fixed checks that n bytes follow b[i:] and returns the position after them,
// or -1.
func fixed(b []byte, i, n int) int {
	i += n
	if i > len(b) {
		return -1
	}
	return i
}

// skip passes over a field of an unknown number with wire type wt at b[i:],
// with pdata's rules (including its handling of groups). It returns the
// position after the field, or -1.
func skip(b []byte, i int, wt int8) int {
	depth := 0
	for i < len(b) {
		switch wt {
		case wtVarint:
			_, i = varint(b, i)
			return i
		case wtI64:
			return fixed(b, i, 8)
		case wtLen:
			_, end := length(b, i)
			return end
		case wtStartGroup:
			depth++
		case wtEndGroup:
			if depth == 0 {
				return -1
			}
			depth--
		case wtI32:
			return fixed(b, i, 4)
		default:
			return -1
		}
		if depth == 0 {
			return i
		}
		_, wt, i = tag(b, i)
		if i < 0 {
			return -1
		}
	}
	return -1
}

// skipScalar passes over a known scalar or string field after checking its
// wire type.
func skipScalar(b []byte, i int, where string, num int32, wt, want int8) (int, error) {
	if wt != want {
		return -1, wrongType(where, num, wt)
	}
	switch want {
	case wtVarint:
		_, i = varint(b, i)
	case wtI64:
		i = fixed(b, i, 8)
	case wtI32:
		i = fixed(b, i, 4)
	case wtLen:
		_, i = length(b, i)
		if i < 0 {
			return -1, badLen(where, num)
		}
		return i, nil
	}
	if i < 0 {
		return -1, badValue(where, num)
	}
	return i, nil
}

// sub returns the bounds of the embedded message of field num at b[i:].
func sub(b []byte, i int, where string, num int32, wt int8) (int, int, error) {
	if wt != wtLen {
		return 0, -1, wrongType(where, num, wt)
	}
	start, end := length(b, i)
	if end < 0 {
		return 0, -1, badLen(where, num)
	}
	return start, end, nil
}

func skipUnknown(b []byte, i int, where string, num int32, wt int8) (int, error) {
	i = skip(b, i, wt)
	if i < 0 {
		return -1, malformed(where, fmt.Sprintf("unknown field %d with wire type %d is truncated or invalid", num, wt))
	}
	return i, nil
}

func (s *scanner) scan(b []byte, dst []Resource) ([]Resource, error) {
	const where = "ExportTraceServiceRequest"
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return dst, badTag(where)
		}
		var err error
		if num == 1 {
			var start, end int
			if start, end, err = sub(b, j, where, num, wt); err != nil {
				return dst, err
			}
			r := Resource{Bytes: end - start}
			if err = s.resourceSpans(b[start:end], &r); err != nil {
				return dst, err
			}
			dst = append(dst, r)
			i = end
			continue
		}
		if i, err = skipUnknown(b, j, where, num, wt); err != nil {
			return dst, err
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
			return badTag(where)
		}
		var err error
		switch num {
		case 1, 2, 1000:
			var start, end int
			if start, end, err = sub(b, j, where, num, wt); err != nil {
				return err
			}
			switch num {
			case 1:
				err = s.resource(b[start:end], &attrs)
			case 2:
				var n int
				n, err = scopeSpans(b[start:end])
				scopes++
				spans += n
			default:
				var n int
				n, err = scopeSpans(b[start:end])
				deprecatedSpans += n
			}
			if err != nil {
				return err
			}
			i = end
		case 3:
			i, err = skipScalar(b, j, where, num, wt, wtLen)
		default:
			i, err = skipUnknown(b, j, where, num, wt)
		}
		if err != nil {
			return err
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

func (s *scanner) resource(b []byte, attrs *resourceAttrs) error {
	const where = "Resource"
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return badTag(where)
		}
		var err error
		switch num {
		case 1:
			var start, end int
			if start, end, err = sub(b, j, where, num, wt); err != nil {
				return err
			}
			key, str, isStr, err := keyValue(b[start:end], 0)
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
			i, err = skipScalar(b, j, where, num, wt, wtVarint)
		case 3:
			var start, end int
			if start, end, err = sub(b, j, where, num, wt); err != nil {
				return err
			}
			err = stringFields("EntityRef", b[start:end], 4)
			i = end
		default:
			i, err = skipUnknown(b, j, where, num, wt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// stringFields checks a message whose fields 1..maxField are all strings or
// bytes.
func stringFields(where string, b []byte, maxField int32) error {
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return badTag(where)
		}
		var err error
		if num <= maxField {
			i, err = skipScalar(b, j, where, num, wt, wtLen)
		} else {
			i, err = skipUnknown(b, j, where, num, wt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func scopeSpans(b []byte) (int, error) {
	const where = "ScopeSpans"
	n := 0
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return n, badTag(where)
		}
		var err error
		switch num {
		case 1, 2:
			var start, end int
			if start, end, err = sub(b, j, where, num, wt); err != nil {
				return n, err
			}
			if num == 1 {
				err = scope(b[start:end])
			} else {
				err = span(b[start:end])
				n++
			}
			i = end
		case 3:
			i, err = skipScalar(b, j, where, num, wt, wtLen)
		default:
			i, err = skipUnknown(b, j, where, num, wt)
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func scope(b []byte) error {
	const where = "InstrumentationScope"
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return badTag(where)
		}
		var err error
		switch num {
		case 1, 2:
			i, err = skipScalar(b, j, where, num, wt, wtLen)
		case 3:
			i, err = attribute(b, j, where, num, wt)
		case 4:
			i, err = skipScalar(b, j, where, num, wt, wtVarint)
		default:
			i, err = skipUnknown(b, j, where, num, wt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// attribute checks the KeyValue of field num at b[i:] and returns the
// position after it.
func attribute(b []byte, i int, where string, num int32, wt int8) (int, error) {
	start, end, err := sub(b, i, where, num, wt)
	if err != nil {
		return -1, err
	}
	if _, _, _, err := keyValue(b[start:end], 0); err != nil {
		return -1, err
	}
	return end, nil
}

// id checks the trace or span id of field num at b[i:]: empty or size bytes.
func id(b []byte, i int, where string, num int32, wt int8, size int) (int, error) {
	start, end, err := sub(b, i, where, num, wt)
	if err != nil {
		return -1, err
	}
	if n := end - start; n != 0 && n != size {
		return -1, malformed(where, fmt.Sprintf("field %d is an id of %d bytes, want %d", num, n, size))
	}
	return end, nil
}

func span(b []byte) error {
	const where = "Span"
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return badTag(where)
		}
		var err error
		switch num {
		case 1:
			i, err = id(b, j, where, num, wt, 16)
		case 2, 4:
			i, err = id(b, j, where, num, wt, 8)
		case 3, 5:
			i, err = skipScalar(b, j, where, num, wt, wtLen)
		case 6, 10, 12, 14:
			i, err = skipScalar(b, j, where, num, wt, wtVarint)
		case 7, 8:
			i, err = skipScalar(b, j, where, num, wt, wtI64)
		case 9:
			i, err = attribute(b, j, where, num, wt)
		case 11, 13, 15:
			var start, end int
			if start, end, err = sub(b, j, where, num, wt); err != nil {
				return err
			}
			switch num {
			case 11:
				err = event(b[start:end])
			case 13:
				err = link(b[start:end])
			default:
				err = spanStatus(b[start:end])
			}
			i = end
		case 16:
			i, err = skipScalar(b, j, where, num, wt, wtI32)
		default:
			i, err = skipUnknown(b, j, where, num, wt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func event(b []byte) error {
	const where = "Span.Event"
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return badTag(where)
		}
		var err error
		switch num {
		case 1:
			i, err = skipScalar(b, j, where, num, wt, wtI64)
		case 2:
			i, err = skipScalar(b, j, where, num, wt, wtLen)
		case 3:
			i, err = attribute(b, j, where, num, wt)
		case 4:
			i, err = skipScalar(b, j, where, num, wt, wtVarint)
		default:
			i, err = skipUnknown(b, j, where, num, wt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func link(b []byte) error {
	const where = "Span.Link"
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return badTag(where)
		}
		var err error
		switch num {
		case 1:
			i, err = id(b, j, where, num, wt, 16)
		case 2:
			i, err = id(b, j, where, num, wt, 8)
		case 3:
			i, err = skipScalar(b, j, where, num, wt, wtLen)
		case 4:
			i, err = attribute(b, j, where, num, wt)
		case 5:
			i, err = skipScalar(b, j, where, num, wt, wtVarint)
		case 6:
			i, err = skipScalar(b, j, where, num, wt, wtI32)
		default:
			i, err = skipUnknown(b, j, where, num, wt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func spanStatus(b []byte) error {
	const where = "Status"
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return badTag(where)
		}
		var err error
		switch num {
		case 2:
			i, err = skipScalar(b, j, where, num, wt, wtLen)
		case 3:
			i, err = skipScalar(b, j, where, num, wt, wtVarint)
		default:
			i, err = skipUnknown(b, j, where, num, wt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// keyValue checks a KeyValue at nesting depth and returns its key and, when
// its value is a string, that string (pdata's rules: the last key and the
// last value set win).
func keyValue(b []byte, depth int) (key, str []byte, isStr bool, err error) {
	const where = "KeyValue"
	if depth >= recursionLimit {
		return nil, nil, false, malformed(where, "attribute values nested too deep")
	}
	depth++
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return nil, nil, false, badTag(where)
		}
		switch num {
		case 1:
			if wt != wtLen {
				return nil, nil, false, wrongType(where, num, wt)
			}
			start, end := length(b, j)
			if end < 0 {
				return nil, nil, false, badLen(where, num)
			}
			key = b[start:end]
			i = end
		case 2:
			var start, end int
			if start, end, err = sub(b, j, where, num, wt); err != nil {
				return nil, nil, false, err
			}
			which, s, err := anyValue(b[start:end], depth)
			if err != nil {
				return nil, nil, false, err
			}
			if which != 0 {
				isStr, str = which == 1, s
			}
			i = end
		case 3:
			i, err = skipScalar(b, j, where, num, wt, wtVarint)
		default:
			i, err = skipUnknown(b, j, where, num, wt)
		}
		if err != nil {
			return nil, nil, false, err
		}
	}
	return key, str, isStr, nil
}

// anyValue checks an AnyValue at nesting depth and returns the number of the
// last oneof field it sets (0 for none) and, when that is string_value, the
// string.
func anyValue(b []byte, depth int) (which int32, str []byte, err error) {
	const where = "AnyValue"
	if depth >= recursionLimit {
		return 0, nil, malformed(where, "attribute values nested too deep")
	}
	depth++
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return 0, nil, badTag(where)
		}
		switch num {
		case 1:
			if wt != wtLen {
				return 0, nil, wrongType(where, num, wt)
			}
			start, end := length(b, j)
			if end < 0 {
				return 0, nil, badLen(where, num)
			}
			str, i = b[start:end], end
		case 2, 3, 8:
			i, err = skipScalar(b, j, where, num, wt, wtVarint)
		case 4:
			i, err = skipScalar(b, j, where, num, wt, wtI64)
		case 7:
			i, err = skipScalar(b, j, where, num, wt, wtLen)
		case 5, 6:
			var start, end int
			if start, end, err = sub(b, j, where, num, wt); err != nil {
				return 0, nil, err
			}
			err = valueList(b[start:end], depth, num == 6)
			i = end
		default:
			if i, err = skipUnknown(b, j, where, num, wt); err != nil {
				return 0, nil, err
			}
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		which = num
	}
	if which != 1 {
		str = nil
	}
	return which, str, nil
}

// valueList checks an ArrayValue (field 1: AnyValue) or, with kv, a
// KeyValueList (field 1: KeyValue) at nesting depth.
func valueList(b []byte, depth int, kv bool) error {
	where := "ArrayValue"
	if kv {
		where = "KeyValueList"
	}
	if depth >= recursionLimit {
		return malformed(where, "attribute values nested too deep")
	}
	depth++
	for i := 0; i < len(b); {
		num, wt, j := tag(b, i)
		if j < 0 {
			return badTag(where)
		}
		var err error
		if num == 1 {
			var start, end int
			if start, end, err = sub(b, j, where, num, wt); err != nil {
				return err
			}
			if kv {
				_, _, _, err = keyValue(b[start:end], depth)
			} else {
				_, _, err = anyValue(b[start:end], depth)
			}
			i = end
		} else {
			i, err = skipUnknown(b, j, where, num, wt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
