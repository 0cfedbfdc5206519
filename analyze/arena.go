package analyze

import "unsafe"

// arena hands out large pointer-free arrays for one Run and releases them
// all at once. On Linux the memory comes from anonymous mappings advised
// for transparent huge pages: the analysis touches each page once, and
// with 4 KiB pages the page faults alone cost more than the decoding
// (tens of thousands of faults per million spans); elsewhere it is plain
// Go memory. Only types without pointers may live in an arena, and nothing
// allocated from it may outlive release.
type arena struct {
	regions [][]byte // mapped regions (Linux)
	cur     []byte   // unused rest of the last region
}

// arenaRegion is the size of one mapping: a multiple of the 2 MiB huge
// page size. Untouched parts of a mapping cost no memory.
const arenaRegion = 64 << 20

// arenaAlloc returns a zeroed []T of length n from a (Go memory when a is
// nil or the mapping fails). T must not contain pointers.
func arenaAlloc[T any](a *arena, n int) []T {
	if n == 0 {
		return nil
	}
	var zero T
	size := int(unsafe.Sizeof(zero)) * n
	if a == nil || size < 1<<20 {
		return make([]T, n)
	}
	b := a.bytes(size, int(unsafe.Alignof(zero)))
	if b == nil {
		return make([]T, n)
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

func (a *arena) bytes(size, align int) []byte {
	if align < 64 {
		align = 64
	}
	off := 0
	if len(a.cur) > 0 {
		off = (align - int(uintptr(unsafe.Pointer(unsafe.SliceData(a.cur))))%align) % align
	}
	if off+size > len(a.cur) {
		r := mapRegion(max(arenaRegion, (size+arenaRegion-1)/arenaRegion*arenaRegion))
		if r == nil {
			return nil
		}
		a.regions = append(a.regions, r)
		a.cur = r
		off = 0
	}
	b := a.cur[off : off+size : off+size]
	a.cur = a.cur[off+size:]
	return b
}

// release unmaps every region. Nothing from the arena may be used after.
func (a *arena) release() {
	for _, r := range a.regions {
		unmapRegion(r)
	}
	a.regions, a.cur = nil, nil
}

// arenaAppend appends v to s, reallocating from a (doubling) when full.
func arenaAppend[T any](a *arena, s []T, v T) []T {
	if len(s) == cap(s) {
		n := arenaAlloc[T](a, max(2*cap(s), 1024))
		copy(n, s)
		s = n[:len(s)]
	}
	return append(s, v)
}
