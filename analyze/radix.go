package analyze

import "slices"

// sortInt64s sorts d ascending: an LSD radix sort on 8-bit digits for
// large inputs (skipping digits that are the same in every value, so
// durations below a few seconds take 4-5 passes), pdqsort for small ones.
// tmp must be at least len(d) long.
func sortInt64s(d, tmp []int64) {
	if len(d) < 2048 {
		slices.Sort(d)
		return
	}
	const flip = uint64(1) << 63 // order negative values first
	var counts [8][256]int
	for _, v := range d {
		u := uint64(v) ^ flip
		for b := 0; b < 8; b++ {
			counts[b][byte(u>>(8*b))]++
		}
	}
	src, dst := d, tmp[:len(d)]
	for b := 0; b < 8; b++ {
		c := &counts[b]
		if c[byte((uint64(d[0])^flip)>>(8*b))] == len(d) {
			continue // every value has the same digit here
		}
		var off [256]int
		sum := 0
		for i := range c {
			off[i] = sum
			sum += c[i]
		}
		shift := 8 * b
		for _, v := range src {
			k := byte((uint64(v) ^ flip) >> shift)
			dst[off[k]] = v
			off[k]++
		}
		src, dst = dst, src
	}
	if &src[0] != &d[0] {
		copy(d, src)
	}
}
