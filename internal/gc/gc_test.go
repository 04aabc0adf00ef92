// gc_test.go checks the collector's one rule, from both sides: a chunk
// with a live reference (a committed holder, or a young reference of a
// write in progress) survives every sweep; a chunk whose references are all
// dead (holder deleted, replaced or aborted) is deleted after the grace
// period, with its references tombstoned. Time is moved by the injected
// clock, never by sleeping.
package gc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/ring"
)

type fixture struct {
	ix     *index.Index
	bs     *blobs.Store
	b      *index.Bucket
	now    time.Time
	setNow func(time.Time)
	c      *Collector
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, err := index.OpenStore("db", index.StoreOptions{FS: vfs.NewMem(), CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	bs, err := blobs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	layout := ring.SingleNode("n1", "", 16)
	rg, _ := ring.NewRing(layout, ring.Assign(nil, layout))
	pl := index.RingPlacement(rg)
	f := &fixture{bs: bs, now: time.Now()}
	var nowMu sync.Mutex
	clock := func() time.Time { nowMu.Lock(); defer nowMu.Unlock(); return f.now }
	f.setNow = func(t time.Time) { nowMu.Lock(); f.now = t; nowMu.Unlock() }
	ix := index.New(index.Config{Self: "n1", Placement: func() index.Placement { return pl }, Store: store, N: 1, Clock: index.NewClock(clock)})
	b := &index.Bucket{Name: "b", ID: index.NewBucketID(), Created: ix.Clock().Now(), Shards: 4}
	if err := ix.PutBucket(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	f.ix, f.b = ix, b
	f.c = New(Config{Index: ix, Blobs: bs, Grace: time.Hour, UploadExpiry: 24 * time.Hour,
		Now: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return f
}

// storeChunk writes a chunk with a reference from holder, as the gateway
// does: reference first, then the bytes.
func (f *fixture) storeChunk(t *testing.T, data string, holder index.Ref) index.BlobID {
	t.Helper()
	id := index.BlobID(blobs.Sum([]byte(data)))
	holder.Created = f.ix.Clock().Now()
	if err := f.ix.PutRefs(context.Background(), id, &holder); err != nil {
		t.Fatal(err)
	}
	if _, err := f.bs.PutChunk(blobs.Seal([]byte(data))); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) sweep(t *testing.T) Stats {
	t.Helper()
	st, err := f.c.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestLiveVersionKeepsChunk(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	w := index.NewWriteID()
	id := f.storeChunk(t, "live", index.ObjectHolder(f.b, "k", w))
	v := &index.Version{ID: "null", Timestamp: f.ix.Clock().Now(), WriteID: w, Chunks: []index.ChunkRef{{ID: id, Size: 4}}}
	if err := f.ix.PutVersion(ctx, f.b, "k", v); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(48 * time.Hour)
	if st := f.sweep(t); st.Deleted != 0 || !f.bs.Has(blobs.ID(id)) {
		t.Fatalf("sweep deleted a chunk of a live version: %+v", st)
	}
	// Delete the version: after the grace period the chunk goes.
	tomb := &index.Version{ID: "null", Timestamp: f.ix.Clock().Now(), WriteID: index.NewWriteID(), Tombstone: true}
	if err := f.ix.PutVersion(ctx, f.b, "k", tomb); err != nil {
		t.Fatal(err)
	}
	if st := f.sweep(t); st.Deleted != 1 || st.RefsTombstoned != 1 || f.bs.Has(blobs.ID(id)) {
		t.Fatalf("sweep after delete = %+v; want the chunk deleted", st)
	}
}

func TestYoungReferenceProtectsWriteInProgress(t *testing.T) {
	f := newFixture(t)
	// A write stored its chunk but has not committed its version yet.
	id := f.storeChunk(t, "in flight", index.ObjectHolder(f.b, "k", index.NewWriteID()))
	f.now = f.now.Add(30 * time.Minute)
	if st := f.sweep(t); st.Deleted != 0 {
		t.Fatalf("sweep deleted the chunk of a write in progress: %+v", st)
	}
	f.now = f.now.Add(2 * time.Hour) // the write never committed
	if st := f.sweep(t); st.Deleted != 1 || f.bs.Has(blobs.ID(id)) {
		t.Fatalf("sweep = %+v; want the abandoned chunk deleted", st)
	}
}

func TestSharedChunkSurvivesOneHolder(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	w1, w2 := index.NewWriteID(), index.NewWriteID()
	id := f.storeChunk(t, "shared", index.ObjectHolder(f.b, "a", w1))
	f.storeChunk(t, "shared", index.ObjectHolder(f.b, "b", w2))
	for _, kv := range []struct {
		key string
		w   index.WriteID
	}{{"a", w1}, {"b", w2}} {
		v := &index.Version{ID: "null", Timestamp: f.ix.Clock().Now(), WriteID: kv.w, Chunks: []index.ChunkRef{{ID: id, Size: 6}}}
		if err := f.ix.PutVersion(ctx, f.b, kv.key, v); err != nil {
			t.Fatal(err)
		}
	}
	tomb := &index.Version{ID: "null", Timestamp: f.ix.Clock().Now(), WriteID: index.NewWriteID(), Tombstone: true}
	if err := f.ix.PutVersion(ctx, f.b, "a", tomb); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(48 * time.Hour)
	if st := f.sweep(t); st.Deleted != 0 || !f.bs.Has(blobs.ID(id)) {
		t.Fatalf("a chunk still held by b was deleted: %+v", st)
	}
}

func TestOrphanChunkDeleted(t *testing.T) {
	f := newFixture(t)
	id, _, err := f.bs.Put([]byte("no refs at all"))
	if err != nil {
		t.Fatal(err)
	}
	if st := f.sweep(t); st.Deleted != 0 {
		t.Fatalf("a fresh orphan was deleted before the grace period: %+v", st)
	}
	f.now = f.now.Add(2 * time.Hour)
	if st := f.sweep(t); st.Deleted != 1 || f.bs.Has(id) {
		t.Fatalf("sweep = %+v; want the orphan deleted", st)
	}
}

func TestMultipartParts(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	u := &index.Upload{Key: "mp", UploadID: "00000000000000000000000000000001", Initiated: f.ix.Clock().Now()}
	if err := f.ix.PutUpload(ctx, f.b, u); err != nil {
		t.Fatal(err)
	}
	put := func(data string) (index.BlobID, *index.Part) {
		p := &index.Part{Number: 1, WriteID: index.NewWriteID(), Timestamp: f.ix.Clock().Now()}
		id := f.storeChunk(t, data, index.PartHolder(f.b, u, 1, p.WriteID))
		p.Chunks = []index.ChunkRef{{ID: id, Size: uint32(len(data))}}
		if err := f.ix.Put(ctx, index.PartRecord(u.UploadID, p)); err != nil {
			t.Fatal(err)
		}
		return id, p
	}
	first, _ := put("first try")
	second, _ := put("second try") // replaces part 1
	f.now = f.now.Add(2 * time.Hour)
	f.sweep(t)
	if f.bs.Has(blobs.ID(first)) || !f.bs.Has(blobs.ID(second)) {
		t.Fatalf("after replacing part 1: first kept=%v second kept=%v; want false, true", f.bs.Has(blobs.ID(first)), f.bs.Has(blobs.ID(second)))
	}
	// The upload is abandoned: expiry aborts it and its chunks go.
	f.now = f.now.Add(48 * time.Hour)
	st := f.sweep(t)
	if st.UploadsExpired != 1 || f.bs.Has(blobs.ID(second)) {
		t.Fatalf("sweep = %+v, chunk kept=%v; want the upload expired and its chunk deleted", st, f.bs.Has(blobs.ID(second)))
	}
}

// TestTombstonesPurged: a deleted version's tombstone goes once the grace
// period has passed (every owner, here one, holds it).
func TestTombstonesPurged(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	v := &index.Version{ID: "null", Timestamp: f.ix.Clock().Now(), WriteID: index.NewWriteID(), Inline: []byte("x"), Size: 1}
	if err := f.ix.PutVersion(ctx, f.b, "gone", v); err != nil {
		t.Fatal(err)
	}
	tomb := &index.Version{ID: "null", Timestamp: f.ix.Clock().Now(), WriteID: index.NewWriteID(), Tombstone: true}
	if err := f.ix.PutVersion(ctx, f.b, "gone", tomb); err != nil {
		t.Fatal(err)
	}
	if st := f.sweep(t); st.TombstonesPurged != 0 {
		t.Fatalf("a fresh tombstone was purged: %+v", st)
	}
	f.setNow(f.now.Add(2 * time.Hour))
	if st := f.sweep(t); st.TombstonesPurged != 1 {
		t.Fatalf("sweep = %+v; want one tombstone purged", st)
	}
	if o, err := f.ix.GetObject(ctx, f.b, "gone"); err != nil || o != nil {
		t.Fatalf("record after purge = %+v, %v; want none", o, err)
	}
}

// TestIdenticalPutRacesLastDelete: while the collector deletes a chunk
// whose last reference is gone, new writes store the same bytes under new
// keys. Whatever the interleaving, a write that committed finds its chunk.
func TestIdenticalPutRacesLastDelete(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const rounds = 60
	type committed struct{ id index.BlobID }
	var done []committed
	for i := 0; i < rounds; i++ {
		data := fmt.Sprintf("contended-%d", i)
		w := index.NewWriteID()
		id := f.storeChunk(t, data, index.ObjectHolder(f.b, "old", w))
		v := &index.Version{ID: "null", Timestamp: f.ix.Clock().Now(), WriteID: w, Chunks: []index.ChunkRef{{ID: id, Size: uint32(len(data))}}}
		if err := f.ix.PutVersion(ctx, f.b, fmt.Sprintf("old-%d", i), v); err != nil {
			t.Fatal(err)
		}
		tomb := &index.Version{ID: "null", Timestamp: f.ix.Clock().Now(), WriteID: index.NewWriteID(), Tombstone: true}
		if err := f.ix.PutVersion(ctx, f.b, fmt.Sprintf("old-%d", i), tomb); err != nil {
			t.Fatal(err)
		}
	}
	// Past the grace period: every old chunk is now collectable.
	f.setNow(f.now.Add(2 * time.Hour))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 3; i++ {
			f.sweep(t)
		}
	}()
	for i := 0; i < rounds; i++ {
		data := fmt.Sprintf("contended-%d", i)
		w := index.NewWriteID()
		// The gateway's order: reference, then bytes, then the version.
		id := f.storeChunk(t, data, index.ObjectHolder(f.b, fmt.Sprintf("new-%d", i), w))
		v := &index.Version{ID: "null", Timestamp: f.ix.Clock().Now(), WriteID: w, Chunks: []index.ChunkRef{{ID: id, Size: uint32(len(data))}}}
		if err := f.ix.PutVersion(ctx, f.b, fmt.Sprintf("new-%d", i), v); err != nil {
			t.Fatal(err)
		}
		done = append(done, committed{id})
	}
	wg.Wait()
	f.sweep(t)
	for i, c := range done {
		if !f.bs.Has(blobs.ID(c.id)) {
			t.Fatalf("write %d committed but its chunk was collected", i)
		}
	}
}

// TestHoldersInADeletedBucket: a version or an unfinished upload left in
// a deleted bucket incarnation (by a write that raced the DeleteBucket)
// holds nothing: its chunks go after the grace period, while those of a
// live bucket stay.
func TestHoldersInADeletedBucket(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	v := &index.Version{ID: "null", Timestamp: f.ix.Clock().Now(), WriteID: index.NewWriteID()}
	version := f.storeChunk(t, "version in a deleted bucket", index.ObjectHolder(f.b, "k", v.WriteID))
	v.Chunks = []index.ChunkRef{{ID: version, Size: 27}}
	if err := f.ix.PutVersion(ctx, f.b, "k", v); err != nil {
		t.Fatal(err)
	}
	u := &index.Upload{Key: "mp", UploadID: "00000000000000000000000000000002", Initiated: f.ix.Clock().Now()}
	if err := f.ix.PutUpload(ctx, f.b, u); err != nil {
		t.Fatal(err)
	}
	p := &index.Part{Number: 1, WriteID: index.NewWriteID(), Timestamp: f.ix.Clock().Now()}
	part := f.storeChunk(t, "part in a deleted bucket", index.PartHolder(f.b, u, 1, p.WriteID))
	p.Chunks = []index.ChunkRef{{ID: part, Size: 24}}
	if err := f.ix.Put(ctx, index.PartRecord(u.UploadID, p)); err != nil {
		t.Fatal(err)
	}
	del := *f.b
	del.Deleted = f.ix.Clock().Now()
	if err := f.ix.PutBucket(ctx, &del); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(2 * time.Hour)
	nb := &index.Bucket{Name: "new", ID: index.NewBucketID(), Created: f.ix.Clock().Now(), Shards: 4}
	if err := f.ix.PutBucket(ctx, nb); err != nil {
		t.Fatal(err)
	}
	nv := &index.Version{ID: "null", Timestamp: f.ix.Clock().Now(), WriteID: index.NewWriteID()}
	fresh := f.storeChunk(t, "version in a new bucket", index.ObjectHolder(nb, "k", nv.WriteID))
	nv.Chunks = []index.ChunkRef{{ID: fresh, Size: 23}}
	if err := f.ix.PutVersion(ctx, nb, "k", nv); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(2 * time.Hour)
	f.sweep(t)
	if f.bs.Has(blobs.ID(version)) || f.bs.Has(blobs.ID(part)) {
		t.Fatalf("chunks of a deleted bucket kept: version %v, part %v", f.bs.Has(blobs.ID(version)), f.bs.Has(blobs.ID(part)))
	}
	if !f.bs.Has(blobs.ID(fresh)) {
		t.Fatal("the chunk of a live bucket was deleted")
	}
}
