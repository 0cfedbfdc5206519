package analyze

// seriesSet collects many distributions of durations (one per operation,
// edge, group, ...) in shared append-only chunks, so no per-series slice is
// ever grown and copied; finish groups them with a counting sort into one
// array and sorts each series.
type seriesSet struct {
	ar     *arena
	keys   [][]int32
	vals   [][]int64
	n      int
	counts []int64
	sorted [][]int64
}

const seriesChunk = 1 << 20

// newSeries returns the id of a new, empty series.
func (s *seriesSet) newSeries() int32 {
	s.counts = append(s.counts, 0)
	return int32(len(s.counts) - 1)
}

func (s *seriesSet) add(id int32, v int64) {
	c, i := s.n/seriesChunk, s.n%seriesChunk
	if c == len(s.keys) {
		s.keys = append(s.keys, arenaAlloc[int32](s.ar, seriesChunk))
		s.vals = append(s.vals, arenaAlloc[int64](s.ar, seriesChunk))
	}
	s.keys[c][i] = id
	s.vals[c][i] = v
	s.n++
	s.counts[id]++
}

// finish groups and sorts the values of every series. The chunks are
// released to the arena's lifetime; get is valid afterwards.
func (s *seriesSet) finish() {
	all := arenaAlloc[int64](s.ar, s.n)
	next := make([]int64, len(s.counts))
	s.sorted = make([][]int64, len(s.counts))
	var off int64
	for id, c := range s.counts {
		next[id] = off
		s.sorted[id] = all[off : off+c : off+c]
		off += c
	}
	for ci := range s.keys {
		k, v := s.keys[ci], s.vals[ci]
		m := min(seriesChunk, s.n-ci*seriesChunk)
		for i := 0; i < m; i++ {
			all[next[k[i]]] = v[i]
			next[k[i]]++
		}
	}
	s.keys, s.vals = nil, nil
	var tmp []int64
	for _, d := range s.sorted {
		if len(d) >= 2048 && len(tmp) < len(d) {
			tmp = arenaAlloc[int64](s.ar, len(d))
		}
		sortInt64s(d, tmp)
	}
}

// get returns the sorted values of series id (valid after finish).
func (s *seriesSet) get(id int32) []int64 {
	if id < 0 || int(id) >= len(s.sorted) {
		return nil
	}
	return s.sorted[id]
}

// pct returns the nearest-rank percentiles of series id.
func (s *seriesSet) pct(id int32) Percentiles { return percentilesSorted(s.get(id)) }
