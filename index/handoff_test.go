package index

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// movablePlacement puts every partition on owners that a test can change,
// as a layout change does.
type movablePlacement struct {
	mu        sync.Mutex
	owners    []string
	fallbacks []string
}

func (p *movablePlacement) get() ([]string, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.owners), slices.Clone(p.fallbacks)
}

func (p *movablePlacement) Partition(pk []byte) uint16     { return uint16(len(pk)) % 16 }
func (p *movablePlacement) BlobPartition(id BlobID) uint16 { return uint16(id[0]) % 16 }
func (p *movablePlacement) Owners(uint16) []string         { o, _ := p.get(); return o }
func (p *movablePlacement) Fallbacks(uint16) []string      { _, f := p.get(); return f }
func (p *movablePlacement) WriteSets(uint16) [][]string    { o, _ := p.get(); return [][]string{o} }
func (p *movablePlacement) Partitions() int                { return 16 }

// TestHintsOfARemovedOwnerGoToTheNewOwners: a fallback holds a hint for an
// owner that is then taken out of the layout. The hint can never be
// delivered to it; handoff must write it to the partition's owners now,
// and drop it only once they have it.
func TestHintsOfARemovedOwnerGoToTheNewOwners(t *testing.T) {
	ctx := context.Background()
	lb := &loopback{stores: map[string]*Store{}, down: map[string]bool{}}
	p := &movablePlacement{owners: []string{"n1", "n2", "n3"}, fallbacks: []string{"n4", "n5"}}
	alive := func(n string) bool {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		return !lb.down[n]
	}
	ixs := map[string]*Index{}
	for _, n := range []string{"n1", "n2", "n3", "n4", "n5"} {
		s := memStore(t, vfs.NewMem())
		t.Cleanup(func() { s.Close() })
		lb.stores[n] = s
		ixs[n] = New(Config{Self: n, Placement: func() Placement { return p }, Store: s, Transport: lb, Alive: alive, N: 3, W: 2, R: 2})
	}
	b := &Bucket{Name: "b", ID: BucketID{1}, Created: 1, Shards: 4}
	lb.set("n3", true)
	v := &Version{ID: "null", Timestamp: 10, WriteID: WriteID{1}, ETag: "e1"}
	if err := ixs["n1"].PutVersion(ctx, b, "k", v); err != nil {
		t.Fatalf("write with one owner down: %v", err)
	}
	hints := func() int {
		items, err := lb.stores["n4"].Hints("n3", 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(items)
	}
	// The quorum answers with n1 and n2; the fallback's copy may still be
	// on its way.
	waitFor(t, func() bool { return hints() == 1 })
	// While n3 is down but still an owner, its hint waits for it.
	if n, err := ixs["n4"].Handoff(ctx); err != nil || n != 0 || hints() != 1 {
		t.Fatalf("handoff to a down owner: %d delivered, %v, %d hints left; want 0, nil, 1", n, err, hints())
	}

	// n3 is removed for good; n5 takes its place. No fallbacks now, so
	// the write quorum needs two of the new owners.
	p.mu.Lock()
	p.owners, p.fallbacks = []string{"n1", "n2", "n5"}, nil
	p.mu.Unlock()
	key := RecordKey(ixs["n4"].partition(TableObjects, objectPK(b, "k")), TableObjects, objectPK(b, "k"), []byte("k"))
	// With the new owners out of reach the hint must stay.
	lb.set("n2", true)
	lb.set("n5", true)
	if n, _ := ixs["n4"].Handoff(ctx); n != 0 || hints() != 1 {
		t.Fatalf("handoff with the new owners down: %d delivered, %d hints left; want 0, 1", n, hints())
	}
	lb.set("n2", false)
	lb.set("n5", false)
	if n, err := ixs["n4"].Handoff(ctx); err != nil || n != 1 {
		t.Fatalf("handoff of a removed owner's hint: %d delivered, %v; want 1", n, err)
	}
	if hints() != 0 {
		t.Fatalf("n4 still holds %d hints for the removed n3", hints())
	}
	// A quorum of the new owners has it; n5 may be the one still writing.
	var got []byte
	waitFor(t, func() bool { got, _ = lb.stores["n5"].Get(key); return got != nil })
	if o, err := DecodeObject(got); err != nil || o.Latest().ETag != "e1" {
		t.Fatalf("new owner n5 holds %+v, %v; want e1", o, err)
	}
	if owners, _ := lb.stores["n3"].HintOwners(); len(owners) != 0 {
		t.Fatalf("the removed owner's store got hints for %v", owners)
	}
}

// TestPurgeWaitsForHints: a fallback holds a hint with a version that is
// deleted afterwards, and stays out of reach past the grace period. The
// owners agree the tombstone may go, but the hint, delivered after a
// purge, would bring the deleted version back. So nothing is purged while
// a node is out of reach or holds hints for the partition; once the hint
// is handed off (and loses to the tombstone), the purge goes ahead and
// the version stays deleted.
func TestPurgeWaitsForHints(t *testing.T) {
	ctx := context.Background()
	lb := &loopback{stores: map[string]*Store{}, down: map[string]bool{}}
	p := &movablePlacement{owners: []string{"n1", "n2", "n3"}, fallbacks: []string{"n4"}}
	alive := func(n string) bool {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		return !lb.down[n]
	}
	ixs := map[string]*Index{}
	for _, n := range []string{"n1", "n2", "n3", "n4"} {
		s := memStore(t, vfs.NewMem())
		t.Cleanup(func() { s.Close() })
		lb.stores[n] = s
		ixs[n] = New(Config{Self: n, Placement: func() Placement { return p }, Store: s, Transport: lb, Alive: alive, N: 3, W: 2, R: 2})
	}
	b := &Bucket{Name: "b", ID: BucketID{1}, Created: 1, Shards: 4}
	key := RecordKey(ixs["n1"].partition(TableObjects, objectPK(b, "k")), TableObjects, objectPK(b, "k"), []byte("k"))

	// The write misses n3, and n4 keeps it as a hint.
	lb.set("n3", true)
	if err := ixs["n1"].PutVersion(ctx, b, "k", &Version{ID: "null", Timestamp: 10, WriteID: WriteID{1}, ETag: "old"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { h, _ := lb.stores["n4"].Hints("n3", 10); return len(h) == 1 })
	// n3 is back, n4 now out of reach; the key is deleted on all owners.
	lb.set("n3", false)
	lb.set("n4", true)
	if err := ixs["n1"].PutVersion(ctx, b, "k", &Version{ID: "null", Timestamp: 20, WriteID: WriteID{2}, Tombstone: true}); err != nil {
		t.Fatal(err)
	}
	// Two owners answered; the third may still be writing.
	waitFor(t, func() bool {
		for _, o := range []string{"n1", "n2", "n3"} {
			v, _ := lb.stores[o].Get(key)
			if obj, err := DecodeObject(v); v == nil || err != nil || !obj.Versions[0].Tombstone {
				return false
			}
		}
		return true
	})
	purge := func() int {
		n := 0
		for _, o := range []string{"n1", "n2", "n3"} {
			k, err := ixs[o].PurgeTombstones(ctx, 30)
			if err != nil {
				t.Fatal(err)
			}
			n += k
		}
		return n
	}
	if n := purge(); n != 0 {
		t.Fatalf("purged %d records while a node that may hold hints was out of reach", n)
	}
	lb.set("n4", false)
	if n := purge(); n != 0 {
		t.Fatalf("purged %d records while a node held hints for their partition", n)
	}
	if n, err := ixs["n4"].Handoff(ctx); err != nil || n != 1 {
		t.Fatalf("handoff: %d, %v", n, err)
	}
	if n := purge(); n != 3 {
		t.Fatalf("purged %d records once the hint was handed off, want the tombstone on each of 3 owners", n)
	}
	for _, o := range []string{"n1", "n2", "n3"} {
		if v, _ := lb.stores[o].Get(key); v != nil {
			obj, _ := DecodeObject(v)
			t.Fatalf("owner %s holds %+v after the purge; want nothing", o, obj)
		}
	}
	if got, err := ixs["n2"].GetObject(ctx, b, "k"); err != nil || got != nil {
		t.Fatalf("read after the purge: %+v, %v; want nothing", got, err)
	}
}

// TestHintedPartitionsBitmap: the bitmap has a bit for each partition
// any owner has hints in, and no other.
func TestHintedPartitionsBitmap(t *testing.T) {
	s := memStore(t, vfs.NewMem())
	defer s.Close()
	hinted := map[string][]uint16{"a": {0, 3, 3, 200}, "bb": {3, 9, 0xffff}}
	for owner, parts := range hinted {
		for i, p := range parts {
			key := RecordKey(p, TableObjects, []byte("pk"), []byte(fmt.Sprintf("k%d", i)))
			v := EncodeObject(&Object{Versions: []Version{{ID: "null", Timestamp: 1, WriteID: WriteID{1}}}})
			if _, err := s.Serve(&Request{Op: OpMerge, For: owner, Items: []Item{{Table: TableObjects, Key: key, Value: v}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	bitmap, err := s.HintedPartitions()
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]bool{0: true, 3: true, 9: true, 200: true, 0xffff: true}
	for p := 0; p <= 0xffff; p++ {
		got := p/8 < len(bitmap) && bitmap[p/8]&(1<<(p%8)) != 0
		if got != want[p] {
			t.Fatalf("partition %d: hinted %v, want %v", p, got, want[p])
		}
	}
}
