// chunkrefs_test.go checks which chunks a node is told it should hold:
// those a live, settled reference names in a partition it owns, each once,
// in id order, and nothing else.
package index

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// halfPlacement gives n1 partitions 0-7 and n2 partitions 8-15.
type halfPlacement struct{ staticPlacement }

func (halfPlacement) Owners(part uint16) []string {
	if part < 8 {
		return []string{"n1"}
	}
	return []string{"n2"}
}

func (p halfPlacement) WriteSets(part uint16) [][]string { return [][]string{p.Owners(part)} }

func TestOwnedChunks(t *testing.T) {
	s, err := OpenStore("db", StoreOptions{FS: vfs.NewMem(), CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := halfPlacement{}
	ix := New(Config{Self: "n1", Placement: func() Placement { return p }, Store: s, N: 1})
	old := MakeTimestamp(time.Now().Add(-time.Hour), 0)
	young := MakeTimestamp(time.Now(), 0)
	cutoff := MakeTimestamp(time.Now().Add(-time.Minute), 0)
	blob := func(first, n byte) BlobID { return BlobID{first, n} }
	put := func(id BlobID, w byte, created, tomb Timestamp) {
		t.Helper()
		r := Ref{Kind: RefVersion, Key: "k", WriteID: WriteID{w}, Created: created, Tombstone: tomb}
		key := RecordKey(p.BlobPartition(id), TableRefs, id[:], r.WriteID[:])
		if _, err := s.Merge([]Item{{Table: TableRefs, Key: key, Value: EncodeRef(&r)}}, true); err != nil {
			t.Fatal(err)
		}
	}
	want := []BlobID{
		blob(1, 1), // two live refs: once
		blob(1, 2), // one let go, one live
		blob(3, 9),
	}
	put(blob(1, 1), 1, old, 0)
	put(blob(1, 1), 2, old, 0)
	put(blob(1, 2), 1, old, young)
	put(blob(1, 2), 2, old, 0)
	put(blob(3, 9), 1, old, 0)
	put(blob(2, 5), 1, old, young) // let go
	put(blob(2, 6), 1, young, 0)   // a write in progress
	put(blob(9, 1), 1, old, 0)     // partition 9: n2's
	put(blob(16+3, 1), 1, old, 0)  // partition 3 again, after blob(3, 9) in id order
	want = append(want, blob(16+3, 1))
	slices.SortFunc(want, func(a, b BlobID) int { return compareIDs(p, a, b) })

	var got []BlobID
	if err := ix.OwnedChunks(context.Background(), cutoff, func(id BlobID) bool {
		got = append(got, id)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("owned chunks %x; want %x", got, want)
	}
}

// compareIDs orders ids as a walk of the partitions does: by partition,
// then by id.
func compareIDs(p Placement, a, b BlobID) int {
	if pa, pb := p.BlobPartition(a), p.BlobPartition(b); pa != pb {
		return int(pa) - int(pb)
	}
	return slices.Compare(a[:], b[:])
}
