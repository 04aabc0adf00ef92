// Shared test helpers. Goal: one brute-force checker of every placement
// invariant, used by all assignment tests, and an independent float
// reference of the fair shares. Method: the checker walks every partition
// and recounts everything from the table alone; the reference computes the
// shares by bisection in float64, a different method from the exact
// breakpoint search of fairShares.

package ring

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// refShares is the float reference of fairShares, by bisection on λ.
func refShares(l Layout) map[NodeID]float64 {
	q := float64(l.Partitions)
	k := min(l.Replicas, len(l.Members))
	zones := map[string][]Member{}
	for _, m := range l.Members {
		zones[m.Zone] = append(zones[m.Zone], m)
	}
	nz := len(zones)
	bounds := func(size int) (float64, float64) {
		if nz >= k {
			return 0, q
		}
		return q, math.Min(q*float64(k-nz+1), float64(size)*q)
	}
	f := func(ms []Member, lam float64) float64 {
		s := 0.0
		for _, m := range ms {
			s += math.Min(q, lam*float64(m.Weight))
		}
		return s
	}
	clamp := func(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }
	solve := func(target float64, g func(float64) float64) float64 {
		lo, hi := 0.0, 1.0
		for g(hi) < target {
			hi *= 2
		}
		for range 200 {
			mid := (lo + hi) / 2
			if g(mid) < target {
				lo = mid
			} else {
				hi = mid
			}
		}
		return hi
	}
	total := float64(k) * q
	lam := solve(total, func(lam float64) float64 {
		s := 0.0
		for _, ms := range zones {
			lo, hi := bounds(len(ms))
			s += clamp(f(ms, lam), lo, hi)
		}
		return s
	})
	out := map[NodeID]float64{}
	for _, ms := range zones {
		lo, hi := bounds(len(ms))
		tz := clamp(f(ms, lam), lo, hi)
		mu := solve(tz, func(x float64) float64 { return f(ms, x) })
		for _, m := range ms {
			out[m.ID] = math.Min(q, mu*float64(m.Weight))
		}
	}
	return out
}

// rawShares is each member's plain weight share of k·Q, ignoring limits.
func rawShares(l Layout) map[NodeID]float64 {
	k := min(l.Replicas, len(l.Members))
	var w float64
	for _, m := range l.Members {
		w += float64(m.Weight)
	}
	out := map[NodeID]float64{}
	for _, m := range l.Members {
		out[m.ID] = float64(k*l.Partitions) * float64(m.Weight) / w
	}
	return out
}

// counts returns how many partition-replicas each node holds.
func counts(a *Assignment) map[NodeID]int {
	c := map[NodeID]int{}
	for _, id := range a.owners {
		c[id]++
	}
	return c
}

// checkAssignment verifies every invariant of a as an assignment of l by
// brute force and returns the violations (ctx prefixes each, e.g. a seed).
func checkAssignment(ctx string, l Layout, a *Assignment) []string {
	var errs []string
	bad := func(format string, args ...any) {
		if len(errs) < 10 {
			errs = append(errs, ctx+": "+fmt.Sprintf(format, args...))
		}
	}
	k := min(l.Replicas, len(l.Members))
	if a.Partitions() != l.Partitions || a.Replicas() != k || a.Version() != l.Version {
		bad("shape %d×%d v%d, want %d×%d v%d", a.Partitions(), a.Replicas(), a.Version(), l.Partitions, k, l.Version)
		return errs
	}
	zoneOf := map[NodeID]string{}
	for _, m := range l.Members {
		zoneOf[m.ID] = m.Zone
	}
	nz := len(slices.Compact(slices.Sorted(func(yield func(string) bool) {
		for _, z := range zoneOf {
			if !yield(z) {
				return
			}
		}
	})))
	for p := range l.Partitions {
		own := a.Owners(Partition(p))
		zs := map[string]bool{}
		for i, id := range own {
			z, ok := zoneOf[id]
			if !ok {
				bad("partition %d: owner %q not a member", p, id)
			}
			if slices.Contains(own[i+1:], id) {
				bad("partition %d: owner %q twice in %v", p, id, own)
			}
			zs[z] = true
		}
		if len(zs) != min(k, nz) {
			bad("partition %d: owners %v span %d zones, want %d", p, own, len(zs), min(k, nz))
		}
	}
	ref := refShares(l)
	c := counts(a)
	for id, t := range ref {
		if float64(c[id]) < math.Floor(0.95*t-1e-6) || float64(c[id]) > math.Ceil(1.05*t+1e-6) {
			bad("node %q holds %d, fair share %.3f: beyond the 5%% tolerance", id, c[id], t)
		}
	}
	return errs
}

func requireValid(t testing.TB, ctx string, l Layout, a *Assignment) {
	t.Helper()
	for _, e := range checkAssignment(ctx, l, a) {
		t.Error(e)
	}
}

// pairs is the set of (partition, node) replicas of a.
func pairs(a *Assignment) map[[2]string]bool {
	s := map[[2]string]bool{}
	for p := range a.Partitions() {
		for _, id := range a.Owners(Partition(p)) {
			s[[2]string{fmt.Sprint(p), string(id)}] = true
		}
	}
	return s
}

// gained returns the replicas in b and not in a, by node.
func gained(a, b *Assignment) map[NodeID]int {
	pa, out := pairs(a), map[NodeID]int{}
	for r := range pairs(b) {
		if !pa[r] {
			out[NodeID(r[1])]++
		}
	}
	return out
}

// layoutOf builds a layout with members named n0, n1, ... of the given
// weights and zones (zones[i%len(zones)]).
func layoutOf(q, n int, weights []uint32, zones ...string) Layout {
	if len(zones) == 0 {
		zones = []string{""}
	}
	l := Layout{Partitions: q, Replicas: n, Version: 1}
	for i, w := range weights {
		l.Members = append(l.Members, Member{ID: NodeID(fmt.Sprintf("n%d", i)), Weight: w, Zone: zones[i%len(zones)], Addr: fmt.Sprintf("10.0.0.%d:7000", i)})
	}
	return l
}

// shuffled returns l with its members in a random order.
func shuffled(l Layout, r *rand.Rand) Layout {
	l = l.Clone()
	r.Shuffle(len(l.Members), func(i, j int) { l.Members[i], l.Members[j] = l.Members[j], l.Members[i] })
	return l
}
