package ring

import (
	"cmp"
	"math/big"
	"slices"
	"strings"
)

// problem is a layout reduced to what placement needs, with members sorted
// by ID and zones by name, so that nothing downstream depends on the order
// the layout listed them in.
type problem struct {
	members     []Member
	q           int      // partitions
	k           int      // owners per partition: min(Replicas, members)
	zones       []string // distinct zone names, sorted
	zoneOf      []int    // member index -> zone index
	zoneMembers [][]int  // zone index -> member indices, ascending
	// spread is how many distinct zones every partition must span:
	// all of its owners' zones when there are enough zones, every zone
	// otherwise.
	spread int
}

func newProblem(l Layout) *problem {
	pr := &problem{members: l.sortedMembers(), q: l.Partitions}
	pr.k = min(l.Replicas, len(pr.members))
	for _, m := range pr.members {
		pr.zones = append(pr.zones, m.Zone)
	}
	slices.Sort(pr.zones)
	pr.zones = slices.Compact(pr.zones)
	pr.zoneOf = make([]int, len(pr.members))
	pr.zoneMembers = make([][]int, len(pr.zones))
	for i, m := range pr.members {
		z, _ := slices.BinarySearchFunc(pr.zones, m.Zone, strings.Compare)
		pr.zoneOf[i] = z
		pr.zoneMembers[z] = append(pr.zoneMembers[z], i)
	}
	pr.spread = min(pr.k, len(pr.zones))
	return pr
}

// zoneBounds returns the least and most partition-replicas zone z can hold
// in any assignment meeting the zone rule. With at least k zones a zone
// holds at most one replica per partition; with fewer, every zone is in
// every partition, and the other zones' mandatory replicas cap the rest.
// One replica per node per partition caps any zone at size*q.
func (pr *problem) zoneBounds(z int) (lo, hi int64) {
	q := int64(pr.q)
	size := int64(len(pr.zoneMembers[z]))
	if len(pr.zones) >= pr.k {
		return 0, min(q, size*q)
	}
	return q, min(q*int64(pr.k-len(pr.zones)+1), size*q)
}

// zoneFn is f(λ) = Σ min(q, λ·w) over a zone's members: what the zone would
// hold at λ partition-replicas per unit of weight, each node capped at one
// replica per partition.
type zoneFn struct {
	q int64
	w []int64 // descending, so nodes saturate in order as λ grows
}

func (f zoneFn) eval(lambda *big.Rat) *big.Rat {
	sum := new(big.Rat)
	capq := new(big.Rat).SetInt64(f.q)
	t := new(big.Rat)
	for _, w := range f.w {
		t.Mul(lambda, new(big.Rat).SetInt64(w))
		if t.Cmp(capq) > 0 {
			t.Set(capq)
		}
		sum.Add(sum, t)
	}
	return sum
}

// inverse returns the least λ with f(λ) = y, for y in [0, len(w)·q].
func (f zoneFn) inverse(y *big.Rat) *big.Rat {
	var rest int64
	for _, w := range f.w {
		rest += w
	}
	for i, w := range f.w {
		// Between the saturation points of nodes i-1 and i, nodes 0..i-1
		// are saturated and f(λ) = i·q + λ·rest.
		bp := big.NewRat(f.q, w)
		atBP := new(big.Rat).Mul(bp, new(big.Rat).SetInt64(rest))
		atBP.Add(atBP, new(big.Rat).SetInt64(int64(i)*f.q))
		if y.Cmp(atBP) <= 0 {
			l := new(big.Rat).Sub(y, new(big.Rat).SetInt64(int64(i)*f.q))
			return l.Quo(l, new(big.Rat).SetInt64(rest))
		}
		rest -= w
	}
	return big.NewRat(f.q, f.w[len(f.w)-1])
}

// fairShares returns each member's (index-aligned with pr.members) ideal,
// real-valued number of partition-replicas: proportional to weight, as far
// as the hard limits allow. The limits are one replica per node per
// partition (a node holds at most q) and the zone bounds; a node or zone
// held back by a limit leaves its excess to the others in proportion to
// their weights ("water filling").
//
// Formally: find λ with Σ_z clamp(f_z(λ), lo_z, hi_z) = k·q, then give each
// zone clamp(f_z(λ)) and each node min(q, μ_z·w) where μ_z solves f_z(μ_z) =
// the zone's amount. The left side is piecewise linear and nondecreasing in
// λ, so λ is found exactly by evaluating it at its breakpoints and
// interpolating in the one segment that crosses k·q.
//
// Exact rationals, not floats, because every node must round the shares
// identically and floating point could differ between architectures
// (fused multiply-add) or sit a hair below an integer.
func fairShares(pr *problem) []*big.Rat {
	q := int64(pr.q)
	total := big.NewRat(int64(pr.k)*q, 1)
	nz := len(pr.zones)
	fns := make([]zoneFn, nz)
	lo := make([]*big.Rat, nz)
	hi := make([]*big.Rat, nz)
	bps := []*big.Rat{new(big.Rat)}
	for z := range nz {
		ws := make([]int64, 0, len(pr.zoneMembers[z]))
		for _, n := range pr.zoneMembers[z] {
			ws = append(ws, int64(pr.members[n].Weight))
			bps = append(bps, big.NewRat(q, int64(pr.members[n].Weight)))
		}
		slices.SortFunc(ws, func(a, b int64) int { return cmp.Compare(b, a) })
		fns[z] = zoneFn{q: q, w: ws}
		l, h := pr.zoneBounds(z)
		lo[z], hi[z] = new(big.Rat).SetInt64(l), new(big.Rat).SetInt64(h)
		if l > 0 {
			bps = append(bps, fns[z].inverse(lo[z]))
		}
		if h < int64(len(ws))*q {
			bps = append(bps, fns[z].inverse(hi[z]))
		}
	}
	slices.SortFunc(bps, (*big.Rat).Cmp)
	bps = slices.CompactFunc(bps, func(a, b *big.Rat) bool { return a.Cmp(b) == 0 })

	clamp := func(z int, v *big.Rat) *big.Rat {
		if v.Cmp(lo[z]) < 0 {
			return lo[z]
		}
		if v.Cmp(hi[z]) > 0 {
			return hi[z]
		}
		return v
	}
	g := func(lambda *big.Rat) *big.Rat {
		s := new(big.Rat)
		for z := range nz {
			s.Add(s, clamp(z, fns[z].eval(lambda)))
		}
		return s
	}

	lambda := bps[len(bps)-1] // g there is the most the zone rule allows, >= total
	prevB, prevG := bps[0], g(bps[0])
	if prevG.Cmp(total) >= 0 {
		lambda = prevB
	} else {
		for _, b := range bps[1:] {
			gb := g(b)
			if gb.Cmp(total) >= 0 {
				// g is linear on [prevB, b] and rises there.
				l := new(big.Rat).Sub(total, prevG)
				l.Mul(l, new(big.Rat).Sub(b, prevB))
				l.Quo(l, new(big.Rat).Sub(gb, prevG))
				lambda = l.Add(l, prevB)
				break
			}
			prevB, prevG = b, gb
		}
	}

	shares := make([]*big.Rat, len(pr.members))
	capq := new(big.Rat).SetInt64(q)
	for z := range nz {
		fz := fns[z].eval(lambda)
		mu := lambda
		if tz := clamp(z, fz); tz.Cmp(fz) != 0 {
			mu = fns[z].inverse(tz)
		}
		for _, n := range pr.zoneMembers[z] {
			s := new(big.Rat).Mul(mu, new(big.Rat).SetInt64(int64(pr.members[n].Weight)))
			if s.Cmp(capq) > 0 {
				s.Set(capq)
			}
			shares[n] = s
		}
	}
	return shares
}

// floorCeil returns ⌊r⌋ and ⌈r⌉ for r >= 0.
func floorCeil(r *big.Rat) (int, int) {
	quo, rem := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	f := int(quo.Int64())
	if rem.Sign() == 0 {
		return f, f
	}
	return f, f + 1
}
