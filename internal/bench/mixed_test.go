// Goal: MIXED issues GET/STAT/PUT/DELETE at 45/30/15/10 percent, and the
// object set's leases are exclusive, so no two workers ever operate on one
// key at once and deleted slots come back through re-creation.
// Method: count a seeded run of draws against the weights; hammer the set
// with goroutines that check a per-slot occupancy counter.
package bench

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

func TestMixedDistribution(t *testing.T) {
	rng := rand.New(rand.NewPCG(12345, 678))
	const n = 200_000
	var counts [numOps]int
	for range n {
		counts[pickMixed(rng)]++
	}
	want := map[Op]float64{OpGet: 0.45, OpStat: 0.30, OpPut: 0.15, OpDelete: 0.10}
	total := 0
	for op, p := range want {
		got := float64(counts[op]) / n
		// Binomial sd at n=200k is at most 0.0011; 0.005 is > 4 sd.
		if got < p-0.005 || got > p+0.005 {
			t.Errorf("%v: %.4f of draws, want %.2f", op, got, p)
		}
		total += counts[op]
	}
	if total != n || counts[OpList] != 0 {
		t.Errorf("draws outside GET/STAT/PUT/DELETE: %v", counts)
	}
}

func TestObjectSetLeases(t *testing.T) {
	s := newObjectSet("p/", 64)
	occupied := make([]atomic.Int32, len(s.keys))
	var wg sync.WaitGroup
	var violations atomic.Int32
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for range 20_000 {
				op := pickMixed(rng)
				i := -1
				if op == OpPut {
					i = s.leaseAbsent()
				}
				if i < 0 {
					i = s.leasePresent(rng)
				}
				if i < 0 {
					continue
				}
				if occupied[i].Add(1) != 1 {
					violations.Add(1)
				}
				runtime.Gosched() // widen the window a double lease would show in
				occupied[i].Add(-1)
				s.release(i, op != OpDelete)
			}
		}()
	}
	wg.Wait()
	if v := violations.Load(); v > 0 {
		t.Fatalf("%d concurrent leases of one slot", v)
	}
	present := 0
	for i := range s.state {
		switch s.state[i].Load() {
		case slotPresent:
			present++
		case slotBusy:
			t.Fatalf("slot %d still leased", i)
		}
	}
	if present+len(s.absent) != len(s.keys) {
		t.Fatalf("%d present + %d absent != %d slots", present, len(s.absent), len(s.keys))
	}
}

func TestKeyNameOrder(t *testing.T) {
	prev := ""
	for _, i := range []int64{0, 1, 9, 10, 99, 100, 12345, 999_999_999} {
		k := keyName("run/", i)
		if k <= prev {
			t.Fatalf("%q sorts before %q", k, prev)
		}
		prev = k
	}
	if k := keyName("x/", 42); k != "x/obj-0000000042" {
		t.Fatalf("keyName = %q", k)
	}
}
