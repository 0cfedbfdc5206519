package analyze

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSortInt64s(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 5, 2047, 2048, 5000, 100000} {
		for _, gen := range []func() int64{
			func() int64 { return r.Int64N(1e9) },
			func() int64 { return r.Int64N(2e9) - 1e9 },
			func() int64 { return r.Int64() - r.Int64() },
			func() int64 { return 42 },
		} {
			d := make([]int64, n)
			for i := range d {
				d[i] = gen()
			}
			want := slices.Clone(d)
			slices.Sort(want)
			sortInt64s(d, make([]int64, n))
			if !slices.Equal(d, want) {
				t.Fatalf("n=%d: radix sort differs from slices.Sort", n)
			}
		}
	}
}
