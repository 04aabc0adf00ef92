package index

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
)

// Typed operations on buckets and objects, built on the generic quorum
// Get/Put/Range. The gateway talks to these.

// ErrConflict is returned by update functions to abandon an update.
var ErrConflict = errors.New("index: update refused")

// GetBucket returns the bucket record for name (possibly deleted), or nil.
func (ix *Index) GetBucket(ctx context.Context, name string) (*Bucket, error) {
	v, err := ix.Get(ctx, TableBuckets, nil, []byte(name))
	if err != nil || v == nil {
		return nil, err
	}
	return DecodeBucket(v)
}

// PutBucket merges a bucket record (a config change, a delete).
func (ix *Index) PutBucket(ctx context.Context, b *Bucket) error {
	return ix.Put(ctx, Record{Table: TableBuckets, SK: []byte(b.Name), Value: EncodeBucket(b)})
}

// UpdateBucket reads the bucket record for name, lets fn decide the new
// state from the current one (nil when absent), and writes it. fn returns
// nil to write nothing. Updates of one name are serialised on this
// coordinator.
func (ix *Index) UpdateBucket(ctx context.Context, name string, fn func(cur *Bucket) (*Bucket, error)) (*Bucket, error) {
	defer ix.lockUpdate(TableBuckets, nil, []byte(name))()
	cur, err := ix.GetBucket(ctx, name)
	if err != nil {
		return nil, err
	}
	next, err := fn(cur)
	if err != nil || next == nil {
		return cur, err
	}
	if err := ix.PutBucket(ctx, next); err != nil {
		return nil, err
	}
	if cur == nil {
		return next, nil
	}
	return MergeBucket(cur, next), nil
}

// ListBuckets returns every live bucket, sorted by name.
func (ix *Index) ListBuckets(ctx context.Context) ([]*Bucket, error) {
	var out []*Bucket
	var from []byte
	for {
		entries, more, err := ix.Range(ctx, TableBuckets, nil, from, nil, 1000, false)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			b, err := DecodeBucket(e.Value)
			if err != nil {
				return nil, err
			}
			if b.Live() {
				out = append(out, b)
			}
		}
		if !more || len(entries) == 0 {
			return out, nil
		}
		from = append(entries[len(entries)-1].SK, 0)
	}
}

// Shard returns the shard of key in a bucket with n shards.
func Shard(key string, n uint32) uint32 {
	if n <= 1 {
		return 0
	}
	return crc32.ChecksumIEEE([]byte(key)) % n
}

func objectPK(b *Bucket, key string) []byte { return ObjectPK(b.ID, Shard(key, b.Shards)) }

// GetObject returns the object record of key, or nil.
func (ix *Index) GetObject(ctx context.Context, b *Bucket, key string) (*Object, error) {
	v, err := ix.Get(ctx, TableObjects, objectPK(b, key), []byte(key))
	if err != nil || v == nil {
		return nil, err
	}
	return DecodeObject(v)
}

// PutVersion merges one version into key's record.
func (ix *Index) PutVersion(ctx context.Context, b *Bucket, key string, v *Version) error {
	return ix.Put(ctx, ObjectRecord(b, key, v))
}

// ObjectRecord is the index record that adds v to key.
func ObjectRecord(b *Bucket, key string, v *Version) Record {
	return Record{Table: TableObjects, PK: objectPK(b, key), SK: []byte(key), Value: EncodeObject(&Object{Versions: []Version{*v}})}
}

// UpdateObject reads key's record, lets fn derive the versions to write
// from it (cur is nil when the key has none; fn returns ErrConflict or its
// own error to write nothing), and writes them with extra records first.
// Conditional writes go through here: updates of one key are serialised
// on this coordinator, so exactly one of two racing conditional writes on
// one node wins.
func (ix *Index) UpdateObject(ctx context.Context, b *Bucket, key string, fn func(cur *Object) ([]Version, error)) error {
	pk := objectPK(b, key)
	defer ix.lockUpdate(TableObjects, pk, []byte(key))()
	cur, err := ix.GetObject(ctx, b, key)
	if err != nil {
		return err
	}
	vs, err := fn(cur)
	if err != nil {
		return err
	}
	if len(vs) == 0 {
		return nil
	}
	return ix.Put(ctx, Record{Table: TableObjects, PK: pk, SK: []byte(key), Value: EncodeObject(&Object{Versions: vs})})
}

// ObjectEntry is one key of a listing.
type ObjectEntry struct {
	Key    string
	Object *Object
}

// ObjectLister walks the object records of a bucket in key order, merging
// the bucket's shards.
type ObjectLister struct {
	ix       *Index
	ctx      context.Context
	bucket   *Bucket
	table    Table
	end      []byte // exclusive upper bound of keys, nil for none
	pageSize int
	h        cursorHeap
	err      error
}

type shardCursor struct {
	pk      []byte
	buf     []RangeEntry
	next    []byte // sort key to read from when buf runs out
	done    bool   // no records after buf
	headKey string
}

type cursorHeap []*shardCursor

func (h cursorHeap) Len() int           { return len(h) }
func (h cursorHeap) Less(i, j int) bool { return h[i].headKey < h[j].headKey }
func (h cursorHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)        { *h = append(*h, x.(*shardCursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// ListObjects returns a lister over keys k with start <= k, k having
// prefix. pageHint is the number of keys the caller expects to consume; it
// sizes the reads.
func (ix *Index) ListObjects(ctx context.Context, b *Bucket, start, prefix string, pageHint int) *ObjectLister {
	return ix.newLister(ctx, b, TableObjects, start, prefix, pageHint)
}

func (ix *Index) newLister(ctx context.Context, b *Bucket, t Table, start, prefix string, pageHint int) *ObjectLister {
	l := &ObjectLister{ix: ix, ctx: ctx, bucket: b, table: t}
	if prefix != "" {
		l.end = prefixEnd([]byte(prefix))
	}
	if start < prefix {
		start = prefix
	}
	shards := max(b.Shards, 1)
	// Keys spread evenly over the shards (by hash), so each shard supplies
	// about pageHint/shards of a page; a little more saves a second read.
	l.pageSize = min(max(pageHint*12/10/int(shards)+8, 16), 1000)
	for s := range shards {
		c := &shardCursor{pk: ObjectPK(b.ID, s), next: []byte(start)}
		l.fill(c)
	}
	return l
}

// fill reads the next page of c and pushes c on the heap if it has a
// record.
func (l *ObjectLister) fill(c *shardCursor) {
	for len(c.buf) == 0 && !c.done && l.err == nil {
		// Listings read object records without their inline bodies.
		entries, more, err := l.ix.rangeRead(l.ctx, l.table, c.pk, c.next, l.end, l.pageSize, false, l.table == TableObjects)
		if err != nil {
			l.err = fmt.Errorf("list objects: %w", err)
			return
		}
		c.buf = entries
		c.done = !more
		if len(entries) > 0 {
			c.next = append(entries[len(entries)-1].SK[:len(entries[len(entries)-1].SK):len(entries[len(entries)-1].SK)], 0)
		}
	}
	if len(c.buf) > 0 {
		c.headKey = string(c.buf[0].SK)
		heap.Push(&l.h, c)
	}
}

// NextRaw returns the next record's sort key and encoded value.
func (l *ObjectLister) NextRaw() (RangeEntry, bool) {
	if l.err != nil || l.h.Len() == 0 {
		return RangeEntry{}, false
	}
	c := heap.Pop(&l.h).(*shardCursor)
	head := c.buf[0]
	c.buf = c.buf[1:]
	l.fill(c)
	return head, true
}

// Next returns the next key's record; ok is false at the end or on error
// (see Err).
func (l *ObjectLister) Next() (e ObjectEntry, ok bool) {
	for {
		head, ok := l.NextRaw()
		if !ok {
			return ObjectEntry{}, false
		}
		o, err := DecodeObjectMeta(head.Value)
		if err != nil {
			l.err = fmt.Errorf("list objects: key %q: %w", head.SK, err)
			return ObjectEntry{}, false
		}
		return ObjectEntry{Key: string(head.SK), Object: o}, true
	}
}

// Seek skips forward so the next key returned is >= key.
func (l *ObjectLister) Seek(key string) {
	cursors := []*shardCursor(l.h)
	l.h = nil
	for _, c := range cursors {
		for len(c.buf) > 0 && string(c.buf[0].SK) < key {
			c.buf = c.buf[1:]
		}
		if len(c.buf) == 0 && !c.done && string(c.next) < key {
			c.next = []byte(key)
		}
		l.fill(c)
	}
}

// Err returns the error that stopped the lister, if any.
func (l *ObjectLister) Err() error { return l.err }

// PrefixEnd returns the least string greater than every string with
// prefix p, and false if there is none (p is all 0xff bytes or empty).
func PrefixEnd(p string) (string, bool) {
	e := prefixEnd([]byte(p))
	return string(e), e != nil
}

// ObjectHolder is the blob reference that a write of key in bucket b
// records for each chunk it stores.
func ObjectHolder(b *Bucket, key string, w WriteID) Ref {
	return Ref{Kind: RefVersion, Bucket: b.ID, Shard: Shard(key, b.Shards), Key: key, WriteID: w}
}

// GetObjectByPK returns the object record of key under an explicit
// placement key, or nil.
func (ix *Index) GetObjectByPK(ctx context.Context, pk []byte, key string) (*Object, error) {
	v, err := ix.Get(ctx, TableObjects, pk, []byte(key))
	if err != nil || v == nil {
		return nil, err
	}
	return DecodeObject(v)
}

// Refs returns every reference record of blob id.
func (ix *Index) Refs(ctx context.Context, id BlobID) ([]*Ref, error) {
	var out []*Ref
	var from []byte
	for {
		entries, more, err := ix.Range(ctx, TableRefs, id[:], from, nil, 1000, false)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			r, err := DecodeRef(e.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		if !more || len(entries) == 0 {
			return out, nil
		}
		from = append(entries[len(entries)-1].SK, 0)
	}
}

// PutRefs merges reference records of blob id.
func (ix *Index) PutRefs(ctx context.Context, id BlobID, refs ...*Ref) error {
	recs := make([]Record, len(refs))
	for i, r := range refs {
		recs[i] = Record{Table: TableRefs, PK: id[:], SK: r.WriteID[:], Value: EncodeRef(r)}
	}
	return ix.Put(ctx, recs...)
}
