// Goal: fairShares, the exact targets the assignment rounds, is right.
// Method: compare it with the float bisection of refShares on seeded
// random layouts (a different algorithm for the same definition), check
// that the shares add up to k·Q exactly and respect every limit, and check
// hand-computed cases.

package ring

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

func TestFairSharesMatchReference(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		ws := make([]uint32, 1+r.IntN(14))
		for i := range ws {
			ws[i] = uint32(1 + r.IntN(20))
			if r.IntN(8) == 0 {
				ws[i] *= 50 // a few giants, so that caps bind
			}
		}
		zones := []string{"a", "b", "c", "d", "e"}[:1+r.IntN(5)]
		l := layoutOf(16<<r.IntN(6), 1+r.IntN(5), ws, zones...)
		pr := newProblem(l)
		shares := fairShares(pr)
		ref := refShares(l)
		sum := new(big.Rat)
		for i, s := range shares {
			id := pr.members[i].ID
			f, _ := s.Float64()
			if math.Abs(f-ref[id]) > 1e-6*math.Max(1, ref[id]) {
				t.Errorf("seed %d: %s share %s, reference %.6f", seed, id, s.FloatString(6), ref[id])
			}
			if s.Sign() <= 0 || s.Cmp(big.NewRat(int64(l.Partitions), 1)) > 0 {
				t.Errorf("seed %d: %s share %s outside (0, Q]", seed, id, s.FloatString(3))
			}
			sum.Add(sum, s)
		}
		if want := big.NewRat(int64(pr.k*pr.q), 1); sum.Cmp(want) != 0 {
			t.Errorf("seed %d: shares add up to %s, want %s", seed, sum.FloatString(6), want.FloatString(0))
		}
		for z, ms := range pr.zoneMembers {
			zs := new(big.Rat)
			for _, n := range ms {
				zs.Add(zs, shares[n])
			}
			lo, hi := pr.zoneBounds(z)
			if zs.Cmp(big.NewRat(lo, 1)) < 0 || zs.Cmp(big.NewRat(hi, 1)) > 0 {
				t.Errorf("seed %d: zone %s holds %s, bounds [%d, %d]", seed, pr.zones[z], zs.FloatString(3), lo, hi)
			}
		}
	}
}

func TestFairSharesCases(t *testing.T) {
	for _, tc := range []struct {
		l    Layout
		want []string
	}{
		// plain proportion
		{layoutOf(256, 1, []uint32{1, 1, 2, 4}), []string{"32", "32", "64", "128"}},
		// node cap: 4 is capped at Q, then 2 as well
		{layoutOf(256, 3, []uint32{1, 1, 2, 4}), []string{"128", "128", "256", "256"}},
		// zone cap: with 2 zones and N=2 each zone holds one replica per
		// partition, 16, whatever its weight; zone a splits its 16 as 6:2
		{layoutOf(16, 2, []uint32{6, 1, 2}, "a", "b", "a"), []string{"12", "16", "4"}},
		// zone floor: 2 zones < N=3, the light zone b still holds Q=16
		{layoutOf(16, 3, []uint32{9, 1, 9}, "a", "b", "a"), []string{"16", "16", "16"}},
		{layoutOf(16, 3, []uint32{9, 1, 9, 9}, "a", "b", "a", "a"), []string{"32/3", "16", "32/3", "32/3"}},
	} {
		pr := newProblem(tc.l)
		got := fairShares(pr)
		for i, s := range got {
			if s.RatString() != tc.want[i] {
				t.Errorf("%v: share of %s = %s, want %s", tc.l.Members, pr.members[i].ID, s.RatString(), tc.want[i])
			}
		}
	}
}
