// scrub_test.go damages one replica's records behind the store's back (a
// value overwritten in pebble without its tree delta, as bit rot would) and
// checks that a scrub pass notices the partition and refills it from a
// co-owner, after which the replicas' trees agree again.
package index

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

func TestScrubRepairsDamagedRecord(t *testing.T) {
	ctx := context.Background()
	ixs, lb := threeNodes(t)
	b := &Bucket{Name: "b", ID: BucketID{9}, Created: 1, Shards: 1}
	for i := 0; i < 50; i++ {
		if err := ixs["n1"].PutVersion(ctx, b, fmt.Sprintf("k%d", i), &Version{ID: "null", Timestamp: Timestamp(i + 1), WriteID: WriteID{1}, ETag: "e"}); err != nil {
			t.Fatal(err)
		}
	}
	victim := lb.stores["n2"]
	pk := ObjectPK(b.ID, 0)
	part := ixs["n2"].partition(TableObjects, pk)
	key := RecordKey(part, TableObjects, pk, []byte("k7"))
	// A write returns at its quorum; the third owner's copies may still be
	// on their way. Rot that lands first would be merged over, and a tree
	// still changing under the scrub reads as writes, not as damage.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		t1, _ := lb.stores["n1"].Tree(part)
		t2, _ := victim.Tree(part)
		t3, _ := lb.stores["n3"].Tree(part)
		if t1.Root() == t2.Root() && t2.Root() == t3.Root() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the victim never received every write")
		}
	}
	// Bit rot: the stored value changes, the tree does not.
	if err := victim.db.Set(key, EncodeObject(&Object{Versions: []Version{{ID: "null", Timestamp: 3, WriteID: WriteID{6}, ETag: "rotten"}}}), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	var st ScrubStats
	if err := ixs["n2"].Scrub(ctx, 0, &st); err != nil {
		t.Fatal(err)
	}
	if st.Corrupt.Load() != 1 || st.Repaired.Load() != 1 {
		t.Fatalf("scrub: %d corrupt, %d repaired; want 1 and 1", st.Corrupt.Load(), st.Repaired.Load())
	}
	got, _ := victim.Get(key)
	o, err := DecodeObject(got)
	if err != nil || o.Latest().ETag != "e" {
		t.Fatalf("record after scrub = %+v, %v", o, err)
	}
	t1, _ := lb.stores["n1"].Tree(part)
	t2, _ := victim.Tree(part)
	if t1.Root() != t2.Root() {
		t.Fatal("trees differ after the repair")
	}
	st = ScrubStats{}
	if err := ixs["n2"].Scrub(ctx, 0, &st); err != nil || st.Corrupt.Load() != 0 {
		t.Fatalf("second pass: %d corrupt, %v", st.Corrupt.Load(), err)
	}
}
