// merkle_test.go checks the incremental record trees against trees
// computed from the records: after random concurrent merges, after a
// reopen and after a crash that loses unsynced writes, the stored tree is
// the tree of the stored records. It also checks that the tree notices one
// differing record and names its leaf.
package index

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func randomMerges(t *testing.T, s *Store, seed uint64, n int, synced bool) {
	t.Helper()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := 0; i < n; i++ {
				part := uint16(r.IntN(4))
				key := RecordKey(part, TableObjects, []byte("pk"), []byte(fmt.Sprintf("k%d", r.IntN(200))))
				v := EncodeObject(&Object{Versions: []Version{{ID: fmt.Sprint(r.IntN(3)), Timestamp: Timestamp(r.IntN(50) + 1), WriteID: WriteID{byte(r.IntN(9))}}}})
				if _, err := s.Merge([]Item{{TableObjects, key, v}}, synced); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}

func checkTrees(t *testing.T, s *Store, what string) {
	t.Helper()
	for part := uint16(0); part < 4; part++ {
		stored, err := s.Tree(part)
		if err != nil {
			t.Fatal(err)
		}
		computed, err := s.ComputeTree(part)
		if err != nil {
			t.Fatal(err)
		}
		if *stored != *computed {
			t.Fatalf("%s: partition %d: stored tree root %x, computed %x", what, part, stored.Root(), computed.Root())
		}
		if part < 3 && stored.Root().IsZero() {
			t.Fatalf("%s: partition %d has an empty tree", what, part)
		}
	}
}

func TestTreeIsIncrementalAndDurable(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s, err := OpenStore("db", StoreOptions{FS: fs, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	randomMerges(t, s, 1, 500, false)
	checkTrees(t, s, "after concurrent merges")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenStore("db", StoreOptions{FS: fs, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	checkTrees(t, s, "after reopen")
	randomMerges(t, s, 2, 300, false)
	// A crash keeps a random part of the unsynced writes; records and tree
	// deltas share batches, so whatever survives agrees.
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(3, 3))})
	_ = s.Close()
	s, err = OpenStore("db", StoreOptions{FS: crashed, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkTrees(t, s, "after a crash")
	// Rebuild agrees with itself.
	if err := s.RebuildTree(1); err != nil {
		t.Fatal(err)
	}
	checkTrees(t, s, "after a rebuild")
}

func TestTreeFindsOneDifference(t *testing.T) {
	a := memStore(t, vfs.NewMem())
	b := memStore(t, vfs.NewMem())
	defer a.Close()
	defer b.Close()
	var items []Item
	for i := 0; i < 1000; i++ {
		key := RecordKey(7, TableObjects, []byte("pk"), []byte(fmt.Sprintf("key-%d", i)))
		items = append(items, Item{TableObjects, key, versionRecord("v", Timestamp(i+1))})
	}
	for _, s := range []*Store{a, b} {
		if _, err := s.Merge(items, false); err != nil {
			t.Fatal(err)
		}
	}
	ta, _ := a.Tree(7)
	tb, _ := b.Tree(7)
	if ta.Root() != tb.Root() {
		t.Fatal("equal stores have different roots")
	}
	odd := items[417].Key
	if _, err := b.Merge([]Item{{TableObjects, odd, versionRecord("w", 5000)}}, false); err != nil {
		t.Fatal(err)
	}
	tb, _ = b.Tree(7)
	if ta.Root() == tb.Root() {
		t.Fatal("roots agree although one record differs")
	}
	var diff []int
	for i := range ta.Leaves {
		if ta.Leaves[i] != tb.Leaves[i] {
			diff = append(diff, i)
		}
	}
	if len(diff) != 1 || diff[0] != int(leafOf(odd)) {
		t.Fatalf("differing leaves %v; want just %d", diff, leafOf(odd))
	}
	ea, _ := a.LeafEntries(7, []byte{leafOf(odd)})
	eb, _ := b.LeafEntries(7, []byte{leafOf(odd)})
	changed := 0
	for i := range ea {
		if ea[i].Hash != eb[i].Hash {
			changed++
			if string(ea[i].Key) != string(odd) {
				t.Fatalf("leaf entries differ at the wrong key")
			}
		}
	}
	if changed != 1 {
		t.Fatalf("%d leaf entries differ; want 1", changed)
	}
}
