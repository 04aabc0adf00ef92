// keyfilter_test.go checks the promise the read before a merge relies on:
// a key in the store is never reported new, whether it was written
// before the store opened (the scan), while the filter was being filled
// or grown (the writers' adds), or after; and that the filter spares most
// reads of keys that are new.
package index

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestKeyFilterHasNoFalseNegatives(t *testing.T) {
	const n = 200_000
	f := newKeyFilter(n)
	r := rand.New(rand.NewPCG(1, 2))
	key := func(i int) []byte { return fmt.Appendf(nil, "k/%d/%d", i, r.Uint64()) }
	var in [][]byte
	for i := range n {
		k := key(i)
		in = append(in, k)
		f.add(k)
	}
	for i, k := range in {
		if !f.mayContain(k) {
			t.Fatalf("key %d added but reported absent", i)
		}
	}
	fp := 0
	for i := range n {
		if f.mayContain(key(n + i)) {
			fp++
		}
	}
	if rate := float64(fp) / n; rate > 0.02 {
		t.Fatalf("false-positive rate %.4f at the filter's capacity, want under 0.02", rate)
	}
	if f.full() {
		t.Fatal("filter full at its capacity")
	}
	// Keys written again (overwrites) do not fill it.
	for range 3 {
		for _, k := range in {
			f.add(k)
		}
	}
	if f.full() {
		t.Fatalf("filter full after its keys were added again: %d counted for %d keys", f.added.Load(), n)
	}
	// New keys do: it counts a key it took for present (a false positive)
	// as not added, so it is full within a few percent past its capacity.
	for i := range n / 20 {
		f.add(key(2*n + i))
	}
	if !f.full() {
		t.Fatalf("filter not full 5%% past its capacity: %d counted", f.added.Load())
	}
}

// waitFilter waits until the store's filter is in use and no bigger one
// is being built.
func waitFilter(t *testing.T, s *Store) *keyFilter {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if f := s.filters.Load().cur; f.ready.Load() && !s.filterBusy.Load() {
			return f
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("key filter not ready")
	return nil
}

func filterItem(i int, ts Timestamp) Item {
	key := RecordKey(uint16(i%256), TableObjects, []byte("pk"), fmt.Appendf(nil, "obj-%07d", i))
	return Item{TableObjects, key, versionRecord(fmt.Sprint(ts), ts)}
}

func mergeRange(t *testing.T, s *Store, lo, hi int, ts Timestamp) {
	t.Helper()
	var items []Item
	for i := lo; i < hi; i++ {
		items = append(items, filterItem(i, ts))
		if len(items) == 1000 || i == hi-1 {
			if _, err := s.Merge(items, false); err != nil {
				t.Error(err)
				return
			}
			items = items[:0]
		}
	}
}

// TestKeyFilterAcrossReopenAndGrowth writes more keys than the first
// filter holds, so it grows while writers keep adding, reopens the store
// so the filter is rebuilt by a scan while writers add more, and checks
// after each step that no written key is taken for new, and that a merge
// into such a key merges with what is stored.
func TestKeyFilterAcrossReopenAndGrowth(t *testing.T) {
	fs := vfs.NewMem()
	s := memStore(t, fs)
	const first = minFilterKeys + 20_000
	// Two writers over disjoint ranges, so the growth scan runs while
	// keys keep arriving.
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mergeRange(t, s, w*first/2, (w+1)*first/2, 5)
		}()
	}
	wg.Wait()
	f := waitFilter(t, s)
	if f.capacity <= minFilterKeys {
		t.Fatalf("filter did not grow: capacity %d after %d keys", f.capacity, first)
	}
	check := func(s *Store, n int) {
		t.Helper()
		for i := range n {
			if s.keyIsNew(filterItem(i, 5).Key) {
				t.Fatalf("key %d of %d written but taken for new", i, n)
			}
		}
	}
	check(s, first)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = memStore(t, fs)
	defer s.Close()
	// Writers race the scan that fills the new filter.
	const second = first + 30_000
	wg.Add(1)
	go func() {
		defer wg.Done()
		mergeRange(t, s, first, second, 5)
	}()
	wg.Wait()
	waitFilter(t, s)
	check(s, second)
	// A merge into a stored key merges with it: the filter sent the read
	// to pebble.
	for _, i := range []int{0, first - 1, first, second - 1} {
		it := filterItem(i, 3)
		want, err := MergeEncoded(TableObjects, filterItem(i, 5).Value, it.Value)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.Merge([]Item{it}, false)
		if err != nil || !bytes.Equal(m[0].Value, want) {
			t.Fatalf("merge into stored key %d: %v; did not merge with the stored record", i, err)
		}
	}
	// And most new keys are known to be new without a read.
	fresh := 0
	for i := second; i < second+10_000; i++ {
		if s.keyIsNew(filterItem(i, 5).Key) {
			fresh++
		}
	}
	if fresh < 9_500 {
		t.Fatalf("only %d of 10,000 new keys known new", fresh)
	}
}
