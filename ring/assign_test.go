// Goal: the assignment requirements, each on a hand-picked cluster where
// the expected outcome is known: determinism, incremental joins and
// leaves, weights, zones, small clusters, owner positions, Diff. Method:
// build layouts directly, run Assign, and check with the brute-force
// checker of helpers_test.go plus the specific property under test;
// figures worth reporting are logged (go test -v -run TestGrow).

package ring

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func equal(n int, w uint32) []uint32 {
	ws := make([]uint32, n)
	for i := range ws {
		ws[i] = w
	}
	return ws
}

func TestAssignDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, l := range []Layout{
		layoutOf(256, 3, []uint32{1, 1, 2, 4}),
		layoutOf(256, 3, []uint32{3, 1, 4, 1, 5, 9, 2, 6}, "a", "b", "c"),
		layoutOf(1024, 2, []uint32{7, 7, 7, 1, 1}, "a", "b"),
	} {
		a := Assign(nil, l)
		grown := l.WithMember(Member{ID: "late", Weight: 2, Zone: "a"})
		b := Assign(a, grown)
		for range 5 {
			if Assign(nil, shuffled(l, r)).Hash() != a.Hash() {
				t.Fatalf("fresh assignment depends on member order (%v)", l.Members)
			}
			if Assign(a, shuffled(grown, r)).Hash() != b.Hash() {
				t.Fatalf("incremental assignment depends on member order")
			}
		}
	}
}

// TestGrow adds nodes one by one to a 3-node cluster (Q=256, N=3, equal
// weights) and checks that every moved replica goes to the newcomer and
// that the newcomer gets its share: about 1/n of the replicas, at most
// ⌈N·Q/n⌉ since equal weights make that its fair share exactly.
func TestGrow(t *testing.T) {
	for _, zones := range [][]string{{""}, {"a", "b", "c"}} {
		l := layoutOf(256, 3, equal(3, 1), zones...)
		a := Assign(nil, l)
		requireValid(t, "3 nodes", l, a)
		for n := 4; n <= 8; n++ {
			id := NodeID(fmt.Sprintf("n%d", n-1))
			l = l.WithMember(Member{ID: id, Weight: 1, Zone: zones[(n-1)%len(zones)]})
			b := Assign(a, l)
			requireValid(t, fmt.Sprintf("%d nodes", n), l, b)
			g := gained(a, b)
			limit := int(math.Ceil(float64(3*256) / float64(n)))
			if len(g) != 1 || g[id] == 0 || g[id] > limit {
				t.Errorf("zones %v, %d nodes: replicas gained %v, want only %s, at most %d", zones, n, g, id, limit)
			}
			if moves := len(a.Diff(b)); moves != g[id] {
				t.Errorf("zones %v, %d nodes: Diff has %d moves, %d replicas changed hands", zones, n, moves, g[id])
			}
			t.Logf("zones %v: %d -> %d nodes moved %d of %d replicas (ideal %.1f)", zones, n-1, n, g[id], 3*256, float64(3*256)/float64(n))
			a = b
		}
	}
}

// TestShrink removes nodes one by one and checks that only the leaver's
// replicas move, each to a survivor.
func TestShrink(t *testing.T) {
	for _, zones := range [][]string{{""}, {"a", "b", "c"}} {
		l := layoutOf(256, 3, []uint32{2, 1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1}, zones...)
		a := Assign(nil, l)
		for _, leaver := range []NodeID{"n4", "n0", "n8", "n3", "n11"} {
			before := counts(a)
			l = l.WithoutMember(leaver)
			b := Assign(a, l)
			requireValid(t, "leave "+string(leaver), l, b)
			lost := gained(b, a)
			if len(lost) != 1 || lost[leaver] != before[leaver] {
				t.Errorf("zones %v: leave of %s lost %v, want only its %d replicas", zones, leaver, lost, before[leaver])
			}
			a = b
		}
	}
}

// TestWeights checks shares against weights. With weights 1,1,2,4 and
// N=3 the weight-4 node's plain share (384 of 768) exceeds Q=256, one
// replica per partition, so it is capped at 256 and the rest is shared in
// proportion among the others, which caps the weight-2 node too: the fair
// shares are 128,128,256,256. With N=1 and N=2 no cap binds and the shares
// are the plain weight shares.
func TestWeights(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []int
	}{
		{1, []int{32, 32, 64, 128}},
		{2, []int{64, 64, 128, 256}},
		{3, []int{128, 128, 256, 256}},
	} {
		l := layoutOf(256, tc.n, []uint32{1, 1, 2, 4})
		a := Assign(nil, l)
		requireValid(t, fmt.Sprint("N=", tc.n), l, a)
		c := counts(a)
		for i, w := range tc.want {
			if got := c[NodeID(fmt.Sprint("n", i))]; got != w {
				t.Errorf("N=%d: n%d holds %d, want %d", tc.n, i, got, w)
			}
		}
	}
}

// TestWeightsRandom checks, on seeded random layouts (Q=256, N=3, 3-12
// nodes, weights 1-10, 1-4 zones), fresh and after a join, that every
// node holds within 10% of its fair share, and of its plain weight share
// when no limit binds.
func TestWeightsRandom(t *testing.T) {
	worst, worstRaw := 0.0, 0.0
	for seed := range uint64(60) {
		r := rand.New(rand.NewPCG(seed, 99))
		ws := make([]uint32, 3+r.IntN(10))
		for i := range ws {
			ws[i] = uint32(1 + r.IntN(10))
		}
		zones := []string{"a", "b", "c", "d"}[:1+r.IntN(4)]
		l := layoutOf(256, 3, ws, zones...)
		a := Assign(nil, l)
		l2 := l.WithMember(Member{ID: "new", Weight: uint32(1 + r.IntN(10)), Zone: zones[r.IntN(len(zones))]})
		for _, step := range []struct {
			l Layout
			a *Assignment
		}{{l, a}, {l2, Assign(a, l2)}} {
			ref, raw := refShares(step.l), rawShares(step.l)
			for id, c := range counts(step.a) {
				d := math.Abs(float64(c)-ref[id]) / ref[id]
				worst = math.Max(worst, d)
				if ref[id] >= 10 && d > 0.10 {
					t.Errorf("seed %d: %s holds %d, fair share %.2f", seed, id, c, ref[id])
				}
				if math.Abs(ref[id]-raw[id]) < 1e-9 {
					worstRaw = math.Max(worstRaw, math.Abs(float64(c)-raw[id])/raw[id])
				}
			}
		}
	}
	t.Logf("max deviation: %.2f%% from fair share, %.2f%% from plain weight share where no limit binds", 100*worst, 100*worstRaw)
}

// TestZones checks the zone rule on layouts where the answer is known.
func TestZones(t *testing.T) {
	zoneOf := func(l Layout) map[NodeID]string {
		z := map[NodeID]string{}
		for _, m := range l.Members {
			z[m.ID] = m.Zone
		}
		return z
	}
	for _, tc := range []struct {
		name    string
		l       Layout
		spanned int
	}{
		{"3 zones N=3", layoutOf(256, 3, []uint32{1, 2, 3, 1, 2, 3, 5}, "a", "b", "c"), 3},
		{"3 zones N=3 lopsided", layoutOf(256, 3, []uint32{10, 1, 1, 10, 1}, "a", "b", "c"), 3},
		{"2 zones N=3", layoutOf(256, 3, []uint32{1, 1, 1, 1, 1}, "a", "b"), 2},
		{"2 zones N=3 one heavy", layoutOf(256, 3, []uint32{9, 1, 9, 9}, "a", "b", "a", "a"), 2},
		{"3 zones N=5", layoutOf(256, 5, equal(9, 1), "a", "b", "c"), 3},
		{"4 zones N=3", layoutOf(256, 3, equal(8, 1), "a", "b", "c", "d"), 3},
	} {
		a := Assign(nil, tc.l)
		requireValid(t, tc.name, tc.l, a)
		z := zoneOf(tc.l)
		for p := range a.Partitions() {
			seen := map[string]int{}
			for _, id := range a.Owners(Partition(p)) {
				seen[z[id]]++
			}
			if len(seen) != tc.spanned {
				t.Fatalf("%s: partition %d spans zones %v, want %d zones", tc.name, p, seen, tc.spanned)
			}
		}
	}
	// When a zone holds more weight than one replica per partition allows,
	// its nodes get less than their weight share and the others more.
	l := layoutOf(256, 3, []uint32{10, 1, 1}, "a", "b", "c")
	c := counts(Assign(nil, l))
	if c["n0"] != 256 || c["n1"] != 256 || c["n2"] != 256 {
		t.Errorf("3 zones of one node each: counts %v, want 256 each whatever the weights", c)
	}
}

func TestSmallCluster(t *testing.T) {
	for _, m := range []int{1, 2, 3} {
		l := layoutOf(64, 3, []uint32{5, 1, 2}[:m], "a", "a", "b")
		a := Assign(nil, l)
		requireValid(t, fmt.Sprint(m, " nodes"), l, a)
		if a.Replicas() != m {
			t.Fatalf("%d nodes: %d owners per partition", m, a.Replicas())
		}
		for p := range a.Partitions() {
			if got := slices.Sorted(slices.Values(a.Owners(Partition(p)))); len(got) != m {
				t.Fatalf("%d nodes: partition %d owners %v", m, p, got)
			}
		}
	}
	// Growing a single node cluster to three: the first node stays first
	// owner everywhere, as every partition only gains owners.
	l := SingleNode("solo", "127.0.0.1:7000", 64)
	a := Assign(nil, l)
	l.Replicas = 3
	for _, id := range []NodeID{"b", "c"} {
		l = l.WithMember(Member{ID: id, Weight: 1})
		b := Assign(a, l)
		requireValid(t, "grow to "+string(id), l, b)
		for p := range b.Partitions() {
			if b.Owners(Partition(p))[0] != "solo" {
				t.Fatalf("partition %d: first owner %v, want solo kept", p, b.Owners(Partition(p)))
			}
		}
		if lost := gained(b, a); len(lost) != 0 {
			t.Fatalf("growing below N lost %v", lost)
		}
		a = b
	}
}

// TestPositions checks the meaning of owner order: owners that stay keep
// their position, and first-owner duty follows data.
func TestPositions(t *testing.T) {
	l := layoutOf(256, 3, equal(6, 1), "a", "b", "c")
	a := Assign(nil, l)
	first := map[NodeID]int{}
	for p := range a.Partitions() {
		first[a.Owners(Partition(p))[0]]++
	}
	for id, n := range first {
		if math.Abs(float64(n)-256.0/6) > 2 {
			t.Errorf("%s is first owner of %d partitions, want about %.1f", id, n, 256.0/6)
		}
	}
	l2 := l.WithMember(Member{ID: "n6", Weight: 1, Zone: "a"})
	b := Assign(a, l2)
	for p := range a.Partitions() {
		old, cur := a.Owners(Partition(p)), b.Owners(Partition(p))
		for i, id := range old {
			if j := slices.Index(cur, id); j >= 0 && j != i {
				t.Fatalf("partition %d: %s moved from position %d to %d (%v -> %v)", p, id, i, j, old, cur)
			}
		}
	}
}

func TestDiff(t *testing.T) {
	l := layoutOf(64, 2, equal(4, 1))
	a := Assign(nil, l)
	if got := len((*Assignment)(nil).Diff(a)); got != 64*2 {
		t.Errorf("nil Diff: %d moves, want %d", got, 64*2)
	}
	if got := a.Diff(a); len(got) != 0 {
		t.Errorf("self Diff: %v", got)
	}
	l2 := l.WithoutMember("n1")
	b := Assign(a, l2)
	for _, mv := range a.Diff(b) {
		if mv.From != "n1" || mv.To == "" || mv.To == "n1" {
			t.Errorf("move %v: want from n1 to a survivor", mv)
		}
		old, cur := a.Owners(mv.Partition), b.Owners(mv.Partition)
		if i := slices.Index(old, mv.From); i < 0 || cur[i] != mv.To {
			t.Errorf("move %v: replacement not at the leaver's position (%v -> %v)", mv, old, cur)
		}
	}
	// The owner count shrinking leaves, in every partition, one move
	// without a destination; the first owner stays unless balance forbids.
	l3 := l2.Clone()
	l3.Replicas, l3.Version = 1, l3.Version+1
	c := Assign(b, l3)
	drops := map[Partition]int{}
	for _, mv := range b.Diff(c) {
		if mv.From == "" {
			t.Errorf("shrinking N: move %v has no source", mv)
		}
		if mv.To == "" {
			drops[mv.Partition]++
		}
	}
	kept := 0
	for p := range c.Partitions() {
		if drops[Partition(p)] != 1 {
			t.Errorf("shrinking N from 2 to 1: partition %d has %d drops", p, drops[Partition(p)])
		}
		if c.Owners(Partition(p))[0] == b.Owners(Partition(p))[0] {
			kept++
		}
	}
	if kept < 60 {
		t.Errorf("shrinking N: first owner kept in %d of 64 partitions", kept)
	}
}

func TestAssignPrevOtherPartitionCount(t *testing.T) {
	a := Assign(nil, layoutOf(64, 2, equal(3, 1)))
	l := layoutOf(128, 2, equal(3, 1))
	if Assign(a, l).Hash() != Assign(nil, l).Hash() {
		t.Error("a previous assignment with another partition count was not ignored")
	}
}

func TestAssignPanicsOnInvalidLayout(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	Assign(nil, Layout{Partitions: 100, Replicas: 1, Members: []Member{{ID: "a", Weight: 1}}})
}
