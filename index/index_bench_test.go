// index_bench_test.go: benchmarks of the index's hot paths.
//
// Goal: know what one metadata operation costs at each layer (record codec,
// CRDT merge, the pebble-backed Store, the quorum coordinator of a one-node
// cluster, the shard-merging object lister), so a request-level profile can
// be read against per-layer figures.
//
// Method: records have the shapes the gateway writes: a "1v" object is one
// null version of a 4 KiB object kept inline with the usual headers; a
// "20v" object is 20 such versions (a versioned key). Store and Index
// benchmarks open pebble on the real filesystem in b.TempDir() with the
// production options (OpenStore defaults) so that synced writes pay a real
// WAL fsync; every write goes to a new key, as a PUT of a new object does.
// Parallel benchmarks use b.SetParallelism(16), i.e. 32 goroutines on this
// 2-core machine, the concurrency of the standard `ringstore bench` runs, so
// pebble's group commit gets the concurrency it would see in production.
// The lister benchmark lists 10,000 keys spread over 8 shards (the default
// bucket layout). Setup writes are unsynced batches, so setup stays fast.
package index

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringstore/ringstore/internal/rpc"
	"github.com/ringstore/ringstore/ring"
)

// benchVersion returns a version as a 4 KiB unversioned PUT leaves it.
func benchVersion(i int, inline []byte) Version {
	var w WriteID
	binary.BigEndian.PutUint64(w[:], uint64(i)+1)
	return Version{
		ID:        fmt.Sprintf("%016x%016x", uint64(i)+1, uint64(i)*7919),
		Timestamp: Timestamp(1_770_000_000_000<<16 + uint64(i)<<16),
		WriteID:   w,
		Size:      int64(len(inline)),
		ETag:      "0123456789abcdef0123456789abcdef",
		Owner:     "RSBENCH0000000000000",
		Headers:   []KV{{Name: "content-type", Value: "application/octet-stream"}, {Name: "x-amz-meta-run", Value: "bench"}},
		Inline:    inline,
	}
}

func benchInline() []byte {
	b := make([]byte, 4<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// benchObjects returns the single-version and 20-version objects.
func benchObjects() (one, twenty *Object) {
	inline := benchInline()
	one = &Object{Versions: []Version{benchVersion(0, inline)}}
	one.Versions[0].ID = "null"
	twenty = &Object{}
	for i := range 20 {
		twenty.Versions = append(twenty.Versions, benchVersion(i, inline))
	}
	return one, twenty
}

func BenchmarkObjectCodec(b *testing.B) {
	one, twenty := benchObjects()
	inline := one.Versions[0].Inline
	cases := []struct {
		name string
		obj  *Object
		// incoming is what a PUT merges into obj: a newer null version
		// (overwrite) for 1v, a 21st version for 20v.
		incoming *Object
	}{
		{"1v", one, &Object{Versions: []Version{func() Version { v := benchVersion(1, inline); v.ID = "null"; return v }()}}},
		{"20v", twenty, &Object{Versions: []Version{benchVersion(20, inline)}}},
	}
	for _, c := range cases {
		enc := EncodeObject(c.obj)
		inc := EncodeObject(c.incoming)
		b.Run(c.name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				_ = EncodeObject(c.obj)
			}
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := DecodeObject(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/merge", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = MergeObject(c.obj, c.incoming)
			}
		})
		// MergeEncoded is what Store.Merge runs for a key that exists:
		// decode both, merge, encode.
		b.Run(c.name+"/merge-encoded", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := MergeEncoded(TableObjects, enc, inc); err != nil {
					b.Fatal(err)
				}
			}
		})
		// canonical is what Store.Merge runs for a new key.
		b.Run(c.name+"/canonical", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := canonical(TableObjects, enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// diskStore opens a store on the real filesystem with production options.
func diskStore(b testing.TB) *Store {
	b.Helper()
	s, err := OpenStore(b.TempDir(), StoreOptions{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// benchKey is the i-th object key of a bench-like run, 'bench/obj-0000000042'.
func benchKey(i int64) string {
	return fmt.Sprintf("bench/obj-%010d", i)
}

var benchBucket = &Bucket{Name: "bench", ID: BucketID{0xbe, 0x4c}, Created: 1, Shards: 8}

func benchItem(part uint16, key string, value []byte) Item {
	return Item{Table: TableObjects, Key: RecordKey(part, TableObjects, objectPK(benchBucket, key), []byte(key)), Value: value}
}

func BenchmarkStoreMerge(b *testing.B) {
	one, _ := benchObjects()
	value := EncodeObject(one)
	for _, sync := range []bool{true, false} {
		name := "nosync"
		if sync {
			name = "sync"
		}
		b.Run(name+"/serial", func(b *testing.B) {
			s := diskStore(b)
			b.ReportAllocs()
			b.SetBytes(int64(len(value)))
			i := int64(0)
			for b.Loop() {
				i++
				if _, err := s.Merge([]Item{benchItem(uint16(i%256), benchKey(i), value)}, sync); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/parallel32", func(b *testing.B) {
			s := diskStore(b)
			var n atomic.Int64
			b.ReportAllocs()
			b.SetBytes(int64(len(value)))
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					if _, err := s.Merge([]Item{benchItem(uint16(i%256), benchKey(i), value)}, sync); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// fillStore writes n single-version objects to s in unsynced batches and
// returns their record keys.
func fillStore(b *testing.B, s *Store, n int) [][]byte {
	b.Helper()
	one, _ := benchObjects()
	value := EncodeObject(one)
	keys := make([][]byte, 0, n)
	var items []Item
	for i := range n {
		it := benchItem(uint16(i%256), benchKey(int64(i)), value)
		keys = append(keys, it.Key)
		items = append(items, it)
		if len(items) == 500 || i == n-1 {
			if _, err := s.Merge(items, false); err != nil {
				b.Fatal(err)
			}
			items = items[:0]
		}
	}
	return keys
}

func BenchmarkStoreGet(b *testing.B) {
	for _, where := range []string{"memtable", "sstable"} {
		b.Run(where, func(b *testing.B) {
			s := diskStore(b)
			keys := fillStore(b, s, 10_000)
			if where == "sstable" {
				if err := s.db.Flush(); err != nil {
					b.Fatal(err)
				}
			}
			r := rand.New(rand.NewPCG(3, 4))
			b.ReportAllocs()
			for b.Loop() {
				v, err := s.Get(keys[r.IntN(len(keys))])
				if err != nil || v == nil {
					b.Fatal(v, err)
				}
			}
		})
	}
	// The read before a merge, over a store big enough to have tables in
	// L6: of a new key (the usual PUT) and of a stored one, by pebble's
	// Get alone and as Merge does it, the key filter first.
	s := diskStore(b)
	keys := fillStore(b, s, 300_000)
	for s.filterBusy.Load() || !s.filters.Load().cur.ready.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	for _, r := range []struct {
		name string
		get  func([]byte) ([]byte, error)
	}{{"pebble-get", s.get}, {"key-filter", s.getBeforeMerge}} {
		b.Run("absent/"+r.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if v, err := r.get(benchItem(uint16(i%256), benchKey(int64(1_000_000+i)), nil).Key); err != nil || v != nil {
					b.Fatal(v, err)
				}
			}
		})
		b.Run("present/"+r.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if v, err := r.get(keys[(i*7919)%len(keys)]); err != nil || v == nil {
					b.Fatal(v, err)
				}
			}
		})
	}
}

// oneNodeIndex is the coordinator of a fresh single-node server, built the
// way cmd/ringstore builds it: a cluster layout of one member with the
// default partitions and replicas (so N=3 with a single owner, which makes
// every quorum 1), the ring placement, no transport.
func oneNodeIndex(b *testing.B, s *Store) *Index {
	b.Helper()
	cl, err := ring.NewClusterLayout(ring.Member{ID: "n1", Weight: 1}, ring.DefaultPartitions, 3)
	if err != nil {
		b.Fatal(err)
	}
	rg, err := cl.Ring()
	if err != nil {
		b.Fatal(err)
	}
	pl := RingPlacement(rg)
	return New(Config{Self: "n1", Placement: func() Placement { return pl }, Store: s, N: cl.Layout.Replicas, Logger: quietLogger()})
}

func BenchmarkIndexPut(b *testing.B) {
	one, _ := benchObjects()
	v := one.Versions[0]
	b.Run("serial", func(b *testing.B) {
		ix := oneNodeIndex(b, diskStore(b))
		ctx := context.Background()
		b.ReportAllocs()
		i := int64(0)
		for b.Loop() {
			i++
			if err := ix.PutVersion(ctx, benchBucket, benchKey(i), &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel32", func(b *testing.B) {
		ix := oneNodeIndex(b, diskStore(b))
		ctx := context.Background()
		var n atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if err := ix.PutVersion(ctx, benchBucket, benchKey(i), &v); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// fillIndex writes n single-version objects through ix in unsynced batches
// (straight to the store, as the coordinator would place them).
func fillIndex(b *testing.B, ix *Index, n int) {
	b.Helper()
	one, _ := benchObjects()
	value := EncodeObject(one)
	var items []Item
	for i := range n {
		key := benchKey(int64(i))
		pk := objectPK(benchBucket, key)
		part := ix.partition(TableObjects, pk)
		items = append(items, Item{Table: TableObjects, Key: RecordKey(part, TableObjects, pk, []byte(key)), Value: value})
		if len(items) == 500 || i == n-1 {
			if _, err := ix.Store().Merge(items, false); err != nil {
				b.Fatal(err)
			}
			items = items[:0]
		}
	}
}

func BenchmarkIndexGet(b *testing.B) {
	const n = 10_000
	ix := oneNodeIndex(b, diskStore(b))
	fillIndex(b, ix, n)
	ctx := context.Background()
	b.Run("Get", func(b *testing.B) {
		r := rand.New(rand.NewPCG(5, 6))
		b.ReportAllocs()
		for b.Loop() {
			key := benchKey(int64(r.IntN(n)))
			v, err := ix.Get(ctx, TableObjects, objectPK(benchBucket, key), []byte(key))
			if err != nil || v == nil {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("GetObject", func(b *testing.B) {
		r := rand.New(rand.NewPCG(5, 6))
		b.ReportAllocs()
		for b.Loop() {
			o, err := ix.GetObject(ctx, benchBucket, benchKey(int64(r.IntN(n))))
			if err != nil || o == nil {
				b.Fatal(o, err)
			}
		}
	})
	b.Run("GetObject/parallel32", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16)
		var seed atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(seed.Add(1), 6))
			for pb.Next() {
				o, err := ix.GetObject(ctx, benchBucket, benchKey(int64(r.IntN(n))))
				if err != nil || o == nil {
					b.Error(o, err)
					return
				}
			}
		})
	})
}

// BenchmarkObjectLister lists a bucket of 10,000 single-version 1 KiB
// inline objects in 8 shards: one op is one 1000-key page from a random
// start (what a ListObjectsV2 page asks of the index) or the whole bucket.
func BenchmarkObjectLister(b *testing.B) {
	const n = 10_000
	ix := oneNodeIndex(b, diskStore(b))
	inline := benchInline()[:1<<10]
	v := benchVersion(0, inline)
	v.ID = "null"
	value := EncodeObject(&Object{Versions: []Version{v}})
	var items []Item
	for i := range n {
		key := benchKey(int64(i))
		pk := objectPK(benchBucket, key)
		part := ix.partition(TableObjects, pk)
		items = append(items, Item{Table: TableObjects, Key: RecordKey(part, TableObjects, pk, []byte(key)), Value: value})
	}
	if _, err := ix.Store().Merge(items, false); err != nil {
		b.Fatal(err)
	}
	// Listing reads tables, as it does on any store older than a memtable.
	if err := ix.Store().db.Flush(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("page1000", func(b *testing.B) {
		r := rand.New(rand.NewPCG(7, 8))
		b.ReportAllocs()
		for b.Loop() {
			start := benchKey(int64(r.IntN(n - 1000)))
			l := ix.ListObjects(ctx, benchBucket, start, "bench/", 1001)
			got := 0
			for got < 1000 {
				if _, ok := l.Next(); !ok {
					break
				}
				got++
			}
			if got != 1000 || l.Err() != nil {
				b.Fatal(got, l.Err())
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/key")
	})
	b.Run("all10000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l := ix.ListObjects(ctx, benchBucket, "", "", 1001)
			got := 0
			for {
				if _, ok := l.Next(); !ok {
					break
				}
				got++
			}
			if got != n || l.Err() != nil {
				b.Fatal(got, l.Err())
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/key")
	})
	// raw: the same page without decoding the records (NextRaw), to split
	// the lister's cost between pebble range reads and record decoding.
	b.Run("page1000-raw", func(b *testing.B) {
		r := rand.New(rand.NewPCG(7, 8))
		b.ReportAllocs()
		for b.Loop() {
			start := benchKey(int64(r.IntN(n - 1000)))
			l := ix.ListObjects(ctx, benchBucket, start, "bench/", 1001)
			got := 0
			for got < 1000 {
				if _, ok := l.NextRaw(); !ok {
					break
				}
				got++
			}
			if got != 1000 || l.Err() != nil {
				b.Fatal(got, l.Err())
			}
		}
	})
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// BenchmarkLeafEntries is the anti-entropy step that lists a partition's
// records in the leaves found different: two leaves of a flushed partition
// of 4 KiB objects.
func BenchmarkLeafEntries(b *testing.B) {
	s := diskStore(b)
	one, _ := benchObjects()
	value := EncodeObject(one)
	var items []Item
	for i := range 2000 {
		items = append(items, benchItem(7, benchKey(int64(i)), value))
	}
	if _, err := s.Merge(items, false); err != nil {
		b.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		es, err := s.LeafEntries(7, []byte{3, 200})
		if err != nil || len(es) == 0 {
			b.Fatal(len(es), err)
		}
	}
}

// streamCluster starts three stores (n1-n3) in this process, each serving
// replica requests on its own stream transport on loopback, and returns
// the coordinator of n1 (N=3 W=2 R=2) with the stores.
func streamCluster(b testing.TB) (*Index, map[string]*Store) {
	return streamNodes(b, nil, 0)
}

// streamNodes is streamCluster with wrap (if not nil) around each node's
// replica handler and a request timeout (0: the default).
func streamNodes(b testing.TB, wrap func(node string, h rpc.Handler) rpc.Handler, timeout time.Duration) (*Index, map[string]*Store) {
	var mu sync.Mutex
	addrs := map[string]string{}
	nodes := []string{"n1", "n2", "n3"}
	stores := map[string]*Store{}
	var self *rpc.Stream
	for _, n := range nodes {
		st := diskStore(b)
		stores[n] = st
		mux := rpc.NewMux()
		h := RPCHandler(st, NewClock(time.Now))
		if wrap != nil {
			h = wrap(n, h)
		}
		mux.Handle(RPCService, h)
		s := &rpc.Stream{Self: n, Secret: []byte("bench-secret-bench-secret-bench-secret-bench"), Mux: mux, Logger: quietLogger(),
			Resolve: func(x string) (string, bool) { mu.Lock(); defer mu.Unlock(); a, ok := addrs[x]; return a, ok }}
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go func() { _ = s.Serve(raw) }()
		b.Cleanup(func() { _ = raw.Close(); s.Close() })
		mu.Lock()
		addrs[n] = raw.Addr().String()
		mu.Unlock()
		if n == "n1" {
			self = s
		}
	}
	p := staticPlacement{owners: nodes}
	ix := New(Config{Self: "n1", Placement: func() Placement { return p }, Store: stores["n1"],
		Transport: RPCTransport{RPC: self}, Clock: NewClock(time.Now), N: 3, W: 2, R: 2,
		RequestTimeout: timeout, Logger: quietLogger()})
	return ix, stores
}

// BenchmarkWriteQuorum writes single-version 4 KiB objects through a
// coordinator whose two co-owners are reached over the stream transport
// (streamCluster): each op is three synced replica merges, returning
// after two. All three nodes share this process and its disk, and on disk
// the three WALs' fsyncs bound it: on the 2-core VM of bench/README.md,
// 254-393 µs per op on ext4 at 1 or 32 clients, 76-104 µs with
// TMPDIR=/dev/shm, which leaves the CPU path.
func BenchmarkWriteQuorum(b *testing.B) {
	one, _ := benchObjects()
	v := one.Versions[0]
	for _, par := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients%d", par), func(b *testing.B) {
			ix, _ := streamCluster(b)
			ctx := context.Background()
			var n atomic.Int64
			b.ReportAllocs()
			// RunParallel starts parallelism x GOMAXPROCS goroutines.
			b.SetParallelism(max(1, par/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := ix.PutVersion(ctx, benchBucket, benchKey(n.Add(1)), &v); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkReadQuorum reads one inline object's record from a read quorum
// of two: this node's store and a peer's over the stream transport on
// loopback. Both nodes run in this process, so ns/op is the work of both
// sides plus the round trip. "full" is the merge read; "digest" is the
// digest read Index.Get tries first, in which the peer returns a 16-byte
// state hash instead of the record.
func BenchmarkReadQuorum(b *testing.B) {
	ix, stores := streamCluster(b)
	ctx := context.Background()
	for _, size := range []int{4 << 10, 64 << 10} {
		inline := make([]byte, size)
		r := rand.New(rand.NewPCG(uint64(size), 9))
		for i := range inline {
			inline[i] = byte(r.Uint32())
		}
		key := fmt.Sprintf("bench/read-%d", size)
		v := benchVersion(0, inline)
		v.ID = "null"
		rec := ObjectRecord(benchBucket, key, &v)
		part := ix.partition(rec.Table, rec.PK)
		rk := RecordKey(part, rec.Table, rec.PK, rec.SK)
		for _, st := range stores {
			if _, err := st.Merge([]Item{{Table: rec.Table, Key: rk, Value: rec.Value}}, false); err != nil {
				b.Fatal(err)
			}
		}
		for _, mode := range []string{"full", "digest"} {
			b.Run(fmt.Sprintf("%dKiB/%s", size>>10, mode), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					m := newRead(ix.view(part), rec.Table, &Request{Op: OpGet, Keys: [][]byte{rk}}, 2).withSelf("n1")
					if mode == "digest" {
						m = m.withDigests()
					}
					if err := ix.run(ctx, m); err != nil {
						b.Fatal(err)
					}
					var vals [][]byte
					if mode == "digest" {
						var ok bool
						if vals, ok = m.digestResult(); !ok {
							b.Fatal("replicas in agreement did not settle a digest read")
						}
					} else {
						var err error
						if vals, _, err = m.getResult(); err != nil {
							b.Fatal(err)
						}
					}
					if len(vals[0]) < size {
						b.Fatalf("read %d bytes, want a record of at least %d", len(vals[0]), size)
					}
				}
			})
		}
	}
}
