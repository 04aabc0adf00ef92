// Goal: measure the costs that matter: a lookup on every request (must be
// a table read, allocation-free) and Assign on every layout change.
// Method: standard benchmarks; BenchmarkAssign covers 5 and 50 nodes at
// Q=256 and Q=4096, fresh and for a join to an existing assignment.

package ring

import (
	"fmt"
	"testing"
)

func BenchmarkOwnersOf(b *testing.B) {
	r := newTestRing(b, layoutOf(4096, 3, equal(50, 1), "a", "b", "c"))
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "bucket/object-%d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = r.OwnersOf(keys[i&1023])
		i++
	}
}

func BenchmarkOwnersOfDigest(b *testing.B) {
	r := newTestRing(b, layoutOf(4096, 3, equal(50, 1), "a", "b", "c"))
	var id [32]byte
	b.ReportAllocs()
	for b.Loop() {
		id[0]++
		_ = r.OwnersOfDigest(id)
	}
}

func BenchmarkAssign(b *testing.B) {
	for _, nodes := range []int{5, 50} {
		for _, q := range []int{256, 4096} {
			ws := make([]uint32, nodes)
			for i := range ws {
				ws[i] = uint32(1 + i%4)
			}
			l := layoutOf(q, 3, ws, "a", "b", "c", "d")
			b.Run(fmt.Sprintf("nodes=%d/q=%d/fresh", nodes, q), func(b *testing.B) {
				for b.Loop() {
					Assign(nil, l)
				}
			})
			prev := Assign(nil, l)
			grown := l.WithMember(Member{ID: "joiner", Weight: 2, Zone: "b"})
			b.Run(fmt.Sprintf("nodes=%d/q=%d/join", nodes, q), func(b *testing.B) {
				for b.Loop() {
					Assign(prev, grown)
				}
			})
		}
	}
}
