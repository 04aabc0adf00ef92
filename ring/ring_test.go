// Goal: the Ring snapshot answers lookups as documented: the partition of
// a key is the top bits of its hash, lookups do not allocate, NewRing
// refuses mismatched inputs, and Fallbacks walks the ring deterministically
// without repeating, skipping or returning owners. Method: compare with
// direct computations, testing.AllocsPerRun, a uniformity check over many
// keys, and brute-force checks of Fallbacks over every partition.

package ring

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func newTestRing(t testing.TB, l Layout) *Ring {
	t.Helper()
	r, err := NewRing(l, Assign(nil, l))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPartitionOf(t *testing.T) {
	for _, q := range []int{16, 256, 4096, 65536} {
		r := newTestRing(t, layoutOf(q, 1, equal(2, 1)))
		hits := make([]int, q)
		keys := 64 * q
		if q == 65536 {
			keys = 4096 // the top-bits identity only; too few for the spread check
		}
		for i := range keys {
			key := fmt.Appendf(nil, "bucket/key-%d", i)
			p := r.PartitionOf(key)
			if want := Partition(xxhash.Sum64(key) >> (64 - log2(q))); p != want {
				t.Fatalf("Q=%d: PartitionOf(%q) = %d, want top bits %d", q, key, p, want)
			}
			hits[p]++
			d := sha256.Sum256(key)
			if pd, want := r.PartitionOfDigest(d), Partition(binary.BigEndian.Uint64(d[:8])>>(64-log2(q))); pd != want {
				t.Fatalf("Q=%d: PartitionOfDigest = %d, want %d", q, pd, want)
			}
		}
		// Every partition gets keys, none more than twice its share: a
		// coarse check that the top bits spread keys.
		mean := keys / q
		if lo, hi := slices.Min(hits), slices.Max(hits); q < 65536 && (lo == 0 || hi > 2*mean) {
			t.Errorf("Q=%d: partition loads from %d to %d, mean %d", q, lo, hi, mean)
		}
	}
}

func TestOwnersOfAllocationFree(t *testing.T) {
	r := newTestRing(t, layoutOf(256, 3, equal(5, 1), "a", "b", "c"))
	key := []byte("bucket/some/object")
	var id [32]byte
	allocs := testing.AllocsPerRun(1000, func() {
		_ = r.OwnersOf(key)
		_ = r.OwnersOfDigest(id)
	})
	if allocs != 0 {
		t.Errorf("lookups allocate %.1f times", allocs)
	}
	if got, want := r.OwnersOf(key), r.Assignment().Owners(r.PartitionOf(key)); !slices.Equal(got, want) {
		t.Errorf("OwnersOf = %v, want %v", got, want)
	}
	// The returned slice has no spare capacity: append copies instead of
	// clobbering the next partition's owners.
	o := r.Owners(0)
	_ = append(o, "intruder")
	if slices.Contains(r.Owners(1), "intruder") {
		t.Error("append to Owners overwrote the table")
	}
}

func TestNewRingRejectsMismatch(t *testing.T) {
	l := layoutOf(64, 2, equal(3, 1))
	a := Assign(nil, l)
	for name, bad := range map[string]Layout{
		"version":    l.WithMember(l.Members[0]),
		"partitions": layoutOf(128, 2, equal(3, 1)),
		"replicas":   layoutOf(64, 3, equal(3, 1)),
		"member":     func() Layout { m := l.Clone(); m.Members[0].ID = "zz"; return m }(),
		"invalid":    {Partitions: 64},
	} {
		if _, err := NewRing(bad, a); err == nil {
			t.Errorf("%s mismatch accepted", name)
		}
	}
	r, err := NewRing(l, a)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version() != l.Version || r.Partitions() != 64 {
		t.Errorf("accessors: v%d %d", r.Version(), r.Partitions())
	}
	if m, ok := r.Member("n1"); !ok || m.Addr != l.Members[1].Addr {
		t.Errorf("Member(n1) = %+v, %v", m, ok)
	}
	lc := r.Layout()
	lc.Members[0].ID = "changed"
	if m, _ := r.Member("n0"); m.ID != "n0" || r.Layout().Members[0].ID != "n0" {
		t.Error("Layout() exposes the ring's members")
	}
}

func TestFallbacks(t *testing.T) {
	l := layoutOf(256, 3, []uint32{1, 2, 3, 1, 2, 3, 1, 2}, "a", "b", "c")
	l.Members = append(l.Members, Member{ID: "tiny", Weight: 1, Zone: "d"})
	r := newTestRing(t, l)
	down := func(id NodeID) bool { return id == "n2" || id == "n5" }
	for p := range r.Partitions() {
		owners := r.Owners(Partition(p))
		all := r.Fallbacks(Partition(p), nil)
		if len(all) != len(l.Members)-len(owners) {
			t.Fatalf("partition %d: %d fallbacks %v for %d non-owners", p, len(all), all, len(l.Members)-len(owners))
		}
		for i, id := range all {
			if slices.Contains(owners, id) || slices.Contains(all[i+1:], id) {
				t.Fatalf("partition %d: fallbacks %v repeat %s or contain an owner", p, all, id)
			}
		}
		// The first fallback is the first non-owner met walking forward.
		var want NodeID
	walk:
		for i := 1; i < r.Partitions(); i++ {
			for _, id := range r.Owners(Partition((p + i) % r.Partitions())) {
				if !slices.Contains(owners, id) {
					want = id
					break walk
				}
			}
		}
		if all[0] != want {
			t.Fatalf("partition %d: first fallback %s, want %s", p, all[0], want)
		}
		healthy := r.Fallbacks(Partition(p), down)
		if want := slices.DeleteFunc(slices.Clone(all), down); !slices.Equal(healthy, want) {
			t.Fatalf("partition %d: with n2, n5 down got %v, want %v", p, healthy, want)
		}
	}
}

func TestFallbacksSmall(t *testing.T) {
	r := newTestRing(t, layoutOf(16, 3, equal(2, 1)))
	if f := r.Fallbacks(3, nil); len(f) != 0 {
		t.Errorf("every node is an owner, yet fallbacks %v", f)
	}
}
