// coordinator_test.go checks the quorum coordinator over an in-process
// transport: writes reach a write quorum, reads merge replicas and repair
// stale ones, range reads merge and respect limits, and the object lister
// matches a naive sorted model over many shards. The seeded simulation of
// faults lives with the cluster work; here the network is perfect except
// where a test takes a node down.
package index

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// staticPlacement puts every partition on the same owners.
type staticPlacement struct {
	owners []string
}

func (p staticPlacement) Partition(pk []byte) uint16       { return uint16(len(pk)) % 16 }
func (p staticPlacement) BlobPartition(id BlobID) uint16   { return uint16(id[0]) % 16 }
func (p staticPlacement) Owners(part uint16) []string      { return p.owners }
func (p staticPlacement) Fallbacks(part uint16) []string   { return nil }
func (p staticPlacement) WriteSets(part uint16) [][]string { return [][]string{p.owners} }
func (p staticPlacement) Partitions() int                  { return 16 }

// loopback delivers requests straight to in-process stores; nodes in down
// fail.
type loopback struct {
	mu      sync.Mutex
	stores  map[string]*Store
	down    map[string]bool
	refused map[string]int // requests refused because their node was down
	observe func(*Request) // if set, sees every request sent
}

func (l *loopback) Call(_ context.Context, node string, req *Request) (*Response, error) {
	l.mu.Lock()
	s, down := l.stores[node], l.down[node]
	observe := l.observe
	if down || s == nil {
		if l.refused == nil {
			l.refused = map[string]int{}
		}
		l.refused[node]++
	}
	l.mu.Unlock()
	if observe != nil {
		observe(req)
	}
	if down || s == nil {
		return nil, errors.New("node down")
	}
	return s.Serve(req)
}

// refusals is the number of requests refused so far because node was
// down. A write returns once its quorum answered, and its request to a
// down owner may not have been sent yet: a test that brings the owner
// back must first see that request refused, or the late request finds
// the owner up and writes to it.
func (l *loopback) refusals(node string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused[node]
}

func (l *loopback) set(node string, down bool) {
	l.mu.Lock()
	l.down[node] = down
	l.mu.Unlock()
}

func threeNodes(t *testing.T) (map[string]*Index, *loopback) {
	t.Helper()
	lb := &loopback{stores: map[string]*Store{}, down: map[string]bool{}}
	p := staticPlacement{owners: []string{"n1", "n2", "n3"}}
	ixs := map[string]*Index{}
	for _, n := range p.owners {
		s := memStore(t, vfs.NewMem())
		t.Cleanup(func() { s.Close() })
		lb.stores[n] = s
		ixs[n] = New(Config{Self: n, Placement: func() Placement { return p }, Store: s, Transport: lb, N: 3, W: 2, R: 2})
	}
	return ixs, lb
}

func TestQuorumWriteReadRepair(t *testing.T) {
	ctx := context.Background()
	ixs, lb := threeNodes(t)
	b := &Bucket{Name: "b", ID: BucketID{1}, Created: 1, Shards: 4}
	lb.set("n3", true)
	v := &Version{ID: "null", Timestamp: 10, WriteID: WriteID{1}, ETag: "e1"}
	if err := ixs["n1"].PutVersion(ctx, b, "k", v); err != nil {
		t.Fatalf("write with one owner down: %v", err)
	}
	lb.set("n3", false)
	lb.set("n1", true)
	// n2 has it, n3 does not: a read through n3 must still see it (R=2)
	// and repair n3.
	o, err := ixs["n3"].GetObject(ctx, b, "k")
	if err != nil || o == nil || o.Latest().ETag != "e1" {
		t.Fatalf("read = %+v, %v; want e1", o, err)
	}
	key := RecordKey(ixs["n3"].partition(TableObjects, objectPK(b, "k")), TableObjects, objectPK(b, "k"), []byte("k"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := lb.stores["n3"].Get(key)
		if got != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("read repair never reached n3")
		}
		time.Sleep(time.Millisecond)
	}
	lb.set("n2", true)
	if err := ixs["n3"].PutVersion(ctx, b, "k2", v); !errors.Is(err, ErrQuorum) {
		t.Fatalf("write with two owners down: %v; want ErrQuorum", err)
	}
}

// TestDigestRead checks that a read of replicas in agreement moves one
// record and a digest, and that one which finds them apart reads again in
// full, returns the newest state and repairs the stale replica.
func TestDigestRead(t *testing.T) {
	ctx := context.Background()
	ixs, lb := threeNodes(t)
	var mu sync.Mutex
	ops := map[Op]int{}
	lb.mu.Lock()
	lb.observe = func(req *Request) {
		mu.Lock()
		ops[req.Op]++
		mu.Unlock()
	}
	lb.mu.Unlock()
	var misses atomic.Int64
	for _, ix := range ixs {
		ix.cfg.OnDigestMiss = func(Table) { misses.Add(1) }
	}
	counts := func() (gets, digests int) {
		mu.Lock()
		defer mu.Unlock()
		g, d := ops[OpGet], ops[OpDigest]
		clear(ops)
		return g, d
	}
	b := &Bucket{Name: "b", ID: BucketID{1}, Created: 1, Shards: 4}
	v1 := &Version{ID: "null", Timestamp: 10, WriteID: WriteID{1}, ETag: "e1"}
	if err := ixs["n1"].PutVersion(ctx, b, "k", v1); err != nil {
		t.Fatal(err)
	}
	// The write returned after two acknowledgements; let the third land.
	key := RecordKey(ixs["n1"].partition(TableObjects, objectPK(b, "k")), TableObjects, objectPK(b, "k"), []byte("k"))
	waitFor(t, func() bool {
		for _, n := range []string{"n1", "n2", "n3"} {
			if v, _ := lb.stores[n].Get(key); v == nil {
				return false
			}
		}
		return true
	})
	counts()
	o, err := ixs["n1"].GetObject(ctx, b, "k")
	if err != nil || o == nil || o.Latest().ETag != "e1" {
		t.Fatalf("read = %+v, %v; want e1", o, err)
	}
	if g, d := counts(); g != 0 || d != 1 || misses.Load() != 0 {
		t.Fatalf("agreeing replicas: %d remote gets, %d digests, %d misses; want 0, 1, 0", g, d, misses.Load())
	}
	if o, err := ixs["n1"].GetObject(ctx, b, "absent"); err != nil || o != nil || misses.Load() != 0 {
		t.Fatalf("absent key: %+v, %v, %d misses; want nil, nil, 0", o, err, misses.Load())
	}

	// n1 misses the second version; a read through it finds n2 apart.
	lb.set("n1", true)
	refused := lb.refusals("n1")
	v2 := &Version{ID: "null", Timestamp: 20, WriteID: WriteID{2}, ETag: "e2"}
	if err := ixs["n2"].PutVersion(ctx, b, "k", v2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return lb.refusals("n1") > refused })
	lb.set("n1", false)
	counts()
	o, err = ixs["n1"].GetObject(ctx, b, "k")
	if err != nil || o == nil || o.Latest().ETag != "e2" {
		t.Fatalf("read across stale replica = %+v, %v; want e2", o, err)
	}
	if g, d := counts(); g != 1 || d != 1 || misses.Load() != 1 {
		t.Fatalf("disagreeing replicas: %d remote gets, %d digests, %d misses; want 1, 1, 1", g, d, misses.Load())
	}
	waitFor(t, func() bool {
		v, _ := lb.stores["n1"].Get(key)
		o, err := DecodeObject(v)
		return err == nil && o.Latest().ETag == "e2"
	})

	// A digest target that fails: the full read takes the spare owner.
	lb.set("n2", true)
	o, err = ixs["n1"].GetObject(ctx, b, "k")
	if err != nil || o == nil || o.Latest().ETag != "e2" {
		t.Fatalf("read with an owner down = %+v, %v; want e2", o, err)
	}
	if misses.Load() != 2 {
		t.Fatalf("%d misses after a failed digest target; want 2", misses.Load())
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestListerMatchesModel lists random keys across shards with random page
// hints, seeks and prefixes and compares with a sorted slice.
func TestListerMatchesModel(t *testing.T) {
	ctx := context.Background()
	for seed := uint64(0); seed < 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 3))
		ixs, _ := threeNodes(t)
		ix := ixs["n1"]
		b := &Bucket{Name: "b", ID: BucketID{byte(seed)}, Created: 1, Shards: uint32(1 + r.IntN(9))}
		alphabet := []string{"a", "b", "/", "ü", "日", "\x00", "z"}
		var keys []string
		seen := map[string]bool{}
		var recs []Record
		for i := 0; i < 300; i++ {
			var sb strings.Builder
			for j := 1 + r.IntN(5); j > 0; j-- {
				sb.WriteString(alphabet[r.IntN(len(alphabet))])
			}
			k := sb.String()
			if seen[k] {
				continue
			}
			seen[k] = true
			keys = append(keys, k)
			recs = append(recs, ObjectRecord(b, k, &Version{ID: "null", Timestamp: 1, WriteID: WriteID{1}}))
		}
		if err := ix.Put(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		sort.Strings(keys)
		for trial := 0; trial < 20; trial++ {
			prefix := ""
			if r.IntN(2) == 0 {
				prefix = alphabet[r.IntN(len(alphabet))]
			}
			start := ""
			if r.IntN(2) == 0 {
				start = keys[r.IntN(len(keys))]
			}
			var want []string
			for _, k := range keys {
				if strings.HasPrefix(k, prefix) && k >= start {
					want = append(want, k)
				}
			}
			l := ix.ListObjects(ctx, b, start, prefix, 1+r.IntN(50))
			var got []string
			for {
				e, ok := l.Next()
				if !ok {
					break
				}
				got = append(got, e.Key)
				// Now and then skip ahead, as delimiter listings do.
				if r.IntN(10) == 0 {
					skip := e.Key + "z"
					got = append(got, "seek:"+skip)
					l.Seek(skip)
				}
			}
			if err := l.Err(); err != nil {
				t.Fatal(err)
			}
			// Rebuild the expectation with the same seeks applied.
			var exp []string
			for i := 0; i < len(want); i++ {
				exp = append(exp, want[i])
				if len(got) > len(exp) && strings.HasPrefix(got[len(exp)], "seek:") {
					skip := got[len(exp)][5:]
					exp = append(exp, got[len(exp)])
					for i+1 < len(want) && want[i+1] < skip {
						i++
					}
				}
			}
			if !slices.Equal(got, exp) {
				t.Fatalf("seed %d trial %d (prefix %q start %q shards %d):\n got %q\nwant %q", seed, trial, prefix, start, b.Shards, got, exp)
			}
		}
	}
}

func TestListBucketsPaginates(t *testing.T) {
	ctx := context.Background()
	ixs, _ := threeNodes(t)
	ix := ixs["n2"]
	for i := 0; i < 1500; i++ {
		if err := ix.PutBucket(ctx, &Bucket{Name: fmt.Sprintf("b%05d", i), ID: BucketID{1}, Created: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ix.PutBucket(ctx, &Bucket{Name: "b00007", ID: BucketID{1}, Created: 1, Deleted: 2}); err != nil {
		t.Fatal(err)
	}
	bs, err := ix.ListBuckets(ctx)
	if err != nil || len(bs) != 1499 {
		t.Fatalf("ListBuckets = %d, %v; want 1499 live", len(bs), err)
	}
}
