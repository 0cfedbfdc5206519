package analyze

import (
	"encoding/binary"
	"encoding/hex"
)

// span is the compact form of one decoded span: 56 bytes, no pointers, so
// chunks of them are never scanned by the garbage collector.
type span struct {
	id, parent int64 // span ids as integers (big-endian bytes); parent 0 = none
	start, end int64 // unix nanoseconds; end >= start after decoding
	trace      int32 // index into store.traceIDs
	name       int32 // string table
	res        int32 // index into store.res
	attrs      int32 // index into store.attrSets (0 = none)
	msg        int32 // status message, string table (0 = none)
	kind       uint8 // OTLP SpanKind 0..5
	status     uint8 // OTLP status code 0..2
	links      uint8 // number of links, saturating at 255
	flags      uint8 // flag* bits
}

const (
	flagHasParent uint8 = 1 << iota // parent id set
	flagDup                         // removed as a duplicate (assembly)
	flagOrphan                      // parent set but not found (assembly)
	flagLong                        // long-lived (classification)
	flagCycle                       // parent link cut to break a cycle (assembly)
	flagJoined                      // lone authentication span matched to its request (joinLoneAuthentication)
)

const (
	kindUnspecified = 0
	kindInternal    = 1
	kindServer      = 2
	kindClient      = 3
	kindProducer    = 4
	kindConsumer    = 5

	statusError = 2
)

var kindNames = [...]string{"UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"}
var statusNames = [...]string{"UNSET", "OK", "ERROR"}

// chunkBits sets the span chunk size (64 Ki spans = 3.5 MiB per chunk):
// chunks avoid the copy and the 2× peak of one growing slice.
const chunkBits = 16
const chunkSize = 1 << chunkBits

// resource is one distinct (service, host, instance) triple.
type resource struct {
	service  int32 // string id of service.name ("unknown_service" when absent)
	host     int32 // string id of host.name (0 = absent)
	instance int32 // string id of service.instance.id (0 = absent)
	clock    int32 // clock domain: index into store.hosts
}

// kv is one kept attribute: a key id (attrKey*) and a string id.
type kv struct {
	key uint8
	val int32
}

// store holds every decoded span plus the interning tables.
type store struct {
	ar     *arena // where span chunks live (nil: Go memory)
	chunks [][]span
	n      int

	strs   []string
	strIdx map[string]int32

	attrSets [][]kv
	attrIdx  map[string]int32
	attrInfo []attrInfo // derived facts per attribute set

	res      []resource
	resIdx   map[[3]int32]int32
	resSpans []int64 // spans decoded per resource (duplicates included)

	hosts   []int32 // clock domain name (string id) per host index
	hostIdx map[int32]int32

	traceIDs []traceID
	traces   *traceTable
	lastID   traceID
	lastIdx  int32

	unknownService int32
}

type traceID struct{ hi, lo uint64 }

func (t traceID) String() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], t.hi)
	binary.BigEndian.PutUint64(b[8:], t.lo)
	return hex.EncodeToString(b[:])
}

func spanIDString(id int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(id))
	return hex.EncodeToString(b[:])
}

func newStore() *store {
	s := &store{
		strIdx:   map[string]int32{"": 0},
		strs:     []string{""},
		attrSets: [][]kv{nil},
		attrIdx:  map[string]int32{"": 0},
		attrInfo: []attrInfo{{}},
		resIdx:   map[[3]int32]int32{},
		hostIdx:  map[int32]int32{},
		lastIdx:  -1,
	}
	s.unknownService = s.intern([]byte("unknown_service"))
	return s
}

// maxValueLen bounds every interned attribute value and status message.
const maxValueLen = 200

// intern returns the id of b's string, adding it when new. Values longer
// than maxValueLen are cut (at a UTF-8 boundary).
func (s *store) intern(b []byte) int32 {
	if len(b) > maxValueLen {
		b = cutUTF8(b, maxValueLen)
	}
	if id, ok := s.strIdx[string(b)]; ok {
		return id
	}
	str := string(b)
	id := int32(len(s.strs))
	s.strs = append(s.strs, str)
	s.strIdx[str] = id
	return id
}

func cutUTF8(b []byte, n int) []byte {
	for n > 0 && n < len(b) && b[n]&0xC0 == 0x80 {
		n--
	}
	return b[:n]
}

func (s *store) internString(str string) int32 { return s.intern([]byte(str)) }

// span returns a pointer to span i.
func (s *store) span(i int32) *span {
	return &s.chunks[i>>chunkBits][i&(chunkSize-1)]
}

// add appends a span and returns its index.
func (s *store) add(sp *span) int32 {
	c := s.n >> chunkBits
	if c == len(s.chunks) {
		s.chunks = append(s.chunks, arenaAlloc[span](s.ar, chunkSize)[:0])
	}
	s.chunks[c] = append(s.chunks[c], *sp)
	s.n++
	s.resSpans[sp.res]++
	return int32(s.n - 1)
}

// trace returns the index of trace id t, adding it when new.
func (s *store) trace(t traceID) int32 {
	if t == s.lastID && s.lastIdx >= 0 {
		return s.lastIdx
	}
	if s.traces == nil {
		s.traces = newTraceTable(s.ar)
	}
	idx := s.traces.get(t, func() int32 {
		s.traceIDs = arenaAppend(s.ar, s.traceIDs, t)
		return int32(len(s.traceIDs) - 1)
	})
	s.lastID, s.lastIdx = t, idx
	return idx
}

// resource returns the index of a resource triple, adding it when new.
func (s *store) resource(service, host, instance int32) int32 {
	if service == 0 {
		service = s.unknownService
	}
	k := [3]int32{service, host, instance}
	if idx, ok := s.resIdx[k]; ok {
		return idx
	}
	clockName := host
	if clockName == 0 {
		clockName = instance
	}
	if clockName == 0 {
		clockName = service
	}
	h, ok := s.hostIdx[clockName]
	if !ok {
		h = int32(len(s.hosts))
		s.hosts = append(s.hosts, clockName)
		s.hostIdx[clockName] = h
	}
	idx := int32(len(s.res))
	s.res = append(s.res, resource{service: service, host: host, instance: instance, clock: h})
	s.resSpans = append(s.resSpans, 0)
	s.resIdx[k] = idx
	return idx
}

// attrSet interns a packed attribute list (5 bytes per kv: key, value id
// little-endian) and returns its id.
func (s *store) attrSet(packed []byte) int32 {
	if len(packed) == 0 {
		return 0
	}
	if id, ok := s.attrIdx[string(packed)]; ok {
		return id
	}
	kvs := make([]kv, len(packed)/5)
	for i := range kvs {
		kvs[i] = kv{key: packed[i*5], val: int32(binary.LittleEndian.Uint32(packed[i*5+1:]))}
	}
	id := int32(len(s.attrSets))
	s.attrSets = append(s.attrSets, kvs)
	s.attrIdx[string(packed)] = id
	s.attrInfo = append(s.attrInfo, s.deriveAttrInfo(kvs))
	return id
}

// attr returns the string value of key k in attribute set id, "" if absent.
func (s *store) attr(set int32, k uint8) string {
	for _, a := range s.attrSets[set] {
		if a.key == k {
			return s.strs[a.val]
		}
	}
	return ""
}

func (s *store) service(sp *span) int32 { return s.res[sp.res].service }
