// Goal: the assignment invariants and the incremental guarantees hold on
// many random clusters, not just hand-picked ones. Method: for each seed a
// random walk of joins and leaves (up to 12 nodes, 1-4 zones, weights
// 1-10, N 1-4, Q 16-1024); after every step the brute-force checker runs,
// the result must not depend on member order, a join must not give the
// newcomer more than its share, and any replica moved between two old
// nodes (a shuffle) must be proven unavoidable by the naive reference of
// reference_test.go. Every failure names its seed and step; replay one
// with -run 'TestRandomWalks/seed=N$'.

package ring

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// raceEnabled is set by race_test.go under the race detector.
var raceEnabled bool

type walkStats struct {
	steps, moved, shuffleSteps, shuffled int
	worstRel, worstAbs                   float64 // deviation from fair share (relative: shares >= 20)
	worstRaw                             float64 // from plain weight share, where no limit binds
	outOfBand                            int     // node-steps outside [⌊t⌋, ⌈t⌉]
}

func TestRandomWalks(t *testing.T) {
	seeds := 150
	if testing.Short() || raceEnabled {
		seeds = 20
	}
	var all walkStats
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			st := randomWalk(t, seed)
			all.steps += st.steps
			all.moved += st.moved
			all.shuffleSteps += st.shuffleSteps
			all.shuffled += st.shuffled
			all.outOfBand += st.outOfBand
			all.worstRel = math.Max(all.worstRel, st.worstRel)
			all.worstAbs = math.Max(all.worstAbs, st.worstAbs)
			all.worstRaw = math.Max(all.worstRaw, st.worstRaw)
		})
	}
	t.Logf("%d steps: max deviation from fair share %.2f%% (shares >= 20), %.2f replicas; from plain weight share where no limit binds %.2f%%; %d node-steps outside [⌊t⌋,⌈t⌉]; %d of %d moved replicas were forced shuffles, in %d steps",
		all.steps, 100*all.worstRel, all.worstAbs, 100*all.worstRaw, all.outOfBand, all.shuffled, all.moved, all.shuffleSteps)
}

func randomWalk(t *testing.T, seed uint64) (st walkStats) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	q := 16 << r.IntN(7) // 16..1024
	nzones := 1 + r.IntN(4)
	l := Layout{Partitions: q, Replicas: 1 + r.IntN(4), Version: 1}
	next := 0
	newMember := func() Member {
		next++
		return Member{ID: NodeID(fmt.Sprintf("node-%02d", next)), Zone: fmt.Sprintf("zone-%d", r.IntN(nzones)), Weight: uint32(1 + r.IntN(10))}
	}
	l.Members = []Member{newMember()}
	a := Assign(nil, l)
	for step := range 16 {
		ctx := fmt.Sprintf("seed=%d step=%d q=%d n=%d", seed, step, q, l.Replicas)
		prev, prevL := a, l
		join := len(l.Members) < 12 && (len(l.Members) == 1 || r.IntN(10) < 6)
		var moved NodeID
		if join {
			m := newMember()
			moved = m.ID
			l = l.WithMember(m)
		} else {
			moved = l.Members[r.IntN(len(l.Members))].ID
			l = l.WithoutMember(moved)
		}
		a = Assign(prev, l)
		for _, e := range checkAssignment(ctx, l, a) {
			t.Error(e)
		}
		if b := Assign(prev, shuffled(l, r)); b.Hash() != a.Hash() {
			t.Errorf("%s: member order changed the assignment", ctx)
		}

		ref, raw := refShares(l), rawShares(l)
		unbound := true // no node or zone limit binds: fair share is plain weight share
		for id := range ref {
			unbound = unbound && math.Abs(ref[id]-raw[id]) < 1e-6
		}
		for id, c := range counts(a) {
			d := math.Abs(float64(c) - ref[id])
			st.worstAbs = math.Max(st.worstAbs, d)
			if ref[id] >= 20 {
				st.worstRel = math.Max(st.worstRel, d/ref[id])
				if unbound {
					st.worstRaw = math.Max(st.worstRaw, d/raw[id])
				}
			}
			if float64(c) < math.Floor(ref[id]-1e-6) || float64(c) > math.Ceil(ref[id]+1e-6) {
				st.outOfBand++
			}
		}

		// A shuffle is a replica gained (join) or lost (leave) by an old
		// node other than the one joining or leaving.
		g := gained(prev, a)
		if !join {
			g = gained(a, prev)
		}
		shuffles := 0
		for id, n := range g {
			st.moved += n
			if id != moved {
				shuffles += n
			}
		}
		st.steps++
		if join {
			if got, limit := g[moved], math.Ceil(ref[moved]*1.05+1e-6); float64(got) > limit {
				t.Errorf("%s: join moved %d replicas, newcomer's share is %.2f", ctx, got, ref[moved])
			}
		}
		if shuffles > 0 {
			st.shuffleSteps++
			st.shuffled += shuffles
			what, avoidable := "leave", false
			if join {
				what, avoidable = "join", shuffleFreeJoinExists(prev, l, moved)
			} else {
				avoidable = shuffleFreeLeaveExists(prev, l, moved)
			}
			if avoidable {
				t.Errorf("%s: %s of %s (zones %v -> %v) moved %d replicas between old nodes, though a shuffle-free assignment exists",
					ctx, what, moved, zonesOf(prevL), zonesOf(l), shuffles)
			}
		}
	}
	return st
}

func zonesOf(l Layout) map[string]int {
	z := map[string]int{}
	for _, m := range l.Members {
		z[m.Zone]++
	}
	return z
}
