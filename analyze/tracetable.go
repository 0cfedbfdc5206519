package analyze

import "hash/maphash"

// traceTable maps trace ids to dense indices: open addressing with linear
// probing in arena memory, at most half full. It replaces a Go map, whose
// generic-key lookups and incremental growth cost as much as decoding a
// span.
type traceTable struct {
	ar    *arena
	slots []traceSlot
	mask  uint64
	n     int
	seed  uint64
}

type traceSlot struct {
	id  traceID
	idx int32 // index + 1; 0 = empty
}

func newTraceTable(ar *arena) *traceTable {
	t := &traceTable{ar: ar, seed: new(maphash.Hash).Sum64() | 1}
	t.resize(1 << 14)
	return t
}

func (t *traceTable) resize(size int) {
	old := t.slots
	t.slots = arenaAlloc[traceSlot](t.ar, size)
	t.mask = uint64(size - 1)
	for i := range old {
		if old[i].idx != 0 {
			t.place(old[i])
		}
	}
}

func (t *traceTable) hash(id traceID) uint64 {
	h := (id.hi ^ id.lo*0x9E3779B97F4A7C15 ^ t.seed) * 0xD6E8FEB86659FD93
	return h ^ h>>32
}

func (t *traceTable) place(s traceSlot) {
	for i := t.hash(s.id) & t.mask; ; i = (i + 1) & t.mask {
		if t.slots[i].idx == 0 {
			t.slots[i] = s
			return
		}
	}
}

// get returns the index of id, calling add to make one when id is new.
func (t *traceTable) get(id traceID, add func() int32) int32 {
	for i := t.hash(id) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.idx == 0 {
			idx := add()
			s.id, s.idx = id, idx+1
			t.n++
			if 2*t.n > len(t.slots) {
				t.resize(2 * len(t.slots))
			}
			return idx
		}
		if s.id == id {
			return s.idx - 1
		}
	}
}
