// bucketfence_test.go checks a PUT racing a DeleteBucket of its bucket:
// exactly one of the two fails, as in S3, and nothing is left that
// garbage collection cannot reclaim.
//
// Method: many trials on one in-process node, each with a fresh bucket
// that the node has cached (so the PUT does not read the record the
// delete changes), a PUT and a DeleteBucket started together, each after
// a random short delay. Then: when the delete won, the bucket created
// again does not show the object; when the PUT won, the object reads back.
// Last, a garbage collection sweep (with the clock an hour on) must leave
// exactly the chunks of the objects that stand.
package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/internal/gc"
)

func TestPutRacingDeleteBucket(t *testing.T) {
	// One gateway, and two over the same index and chunks standing for
	// two nodes: the PUT through one, the DeleteBucket through the other,
	// which tells the first of its fence as a cluster node tells the
	// others.
	for _, two := range []bool{false, true} {
		t.Run(fmt.Sprintf("two=%v", two), func(t *testing.T) {
			putRacingDeleteBucket(t, two)
		})
	}
}

func putRacingDeleteBucket(t *testing.T, two bool) {
	ts := newTestServer(t)
	deleter := ts
	if two {
		other := &testServer{t: t, s: New(ts.s.cfg), ix: ts.ix, blobs: ts.blobs}
		other.s.cfg.FenceEverywhere = func(_ context.Context, name string, fence index.Timestamp, set bool) error {
			ts.s.FenceBucket(name, fence, set)
			return nil
		}
		deleter = other
	}
	r := rand.New(rand.NewPCG(3, 4))
	trials := 200
	if testing.Short() {
		trials = 50
	}
	keep := map[blobs.ID]bool{}
	putWon, deleteWon := 0, 0
	for trial := range trials {
		bkt := fmt.Sprintf("race-%d", trial)
		ts.must(200, "PUT", "/"+bkt, nil)
		ts.do("GET", "/"+bkt+"/absent", nil) // the node caches the bucket
		// Inline, or three chunks of 64 KiB and a tail.
		body := make([]byte, []int{100, 3<<16 + 77}[trial%2])
		for i := range body {
			body[i] = byte(r.Uint32())
		}
		d1, d2 := time.Duration(r.IntN(300))*time.Microsecond, time.Duration(r.IntN(300))*time.Microsecond
		var put, del int
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			time.Sleep(d1)
			put = ts.do("PUT", "/"+bkt+"/obj", body).Code
		}()
		go func() {
			defer wg.Done()
			time.Sleep(d2)
			del = deleter.do("DELETE", "/"+bkt, nil).Code
		}()
		wg.Wait()
		switch {
		case put == 200 && del == 204:
			t.Fatalf("trial %d: both the PUT and the DeleteBucket succeeded", trial)
		case put == 200 && del == 409:
			putWon++
			if rr := ts.do("GET", "/"+bkt+"/obj", nil); rr.Code != 200 || !bytes.Equal(rr.Body.Bytes(), body) {
				t.Fatalf("trial %d: the PUT won but GET answers %d", trial, rr.Code)
			}
			for off := 0; len(body) > 1<<10 && off < len(body); off += 1 << 16 {
				keep[blobs.Sum(body[off:min(off+1<<16, len(body))])] = true
			}
		case put == 404 && del == 204:
			deleteWon++
			ts.must(200, "PUT", "/"+bkt, nil)
			if rr := ts.do("GET", "/"+bkt+"/obj", nil); rr.Code != 404 {
				t.Fatalf("trial %d: the delete won, yet the bucket created again answers GET with %d", trial, rr.Code)
			}
		default:
			t.Fatalf("trial %d: PUT %d, DeleteBucket %d; want exactly one to fail", trial, put, del)
		}
	}
	t.Logf("%d trials: the PUT won %d, the DeleteBucket %d", trials, putWon, deleteWon)

	c := gc.New(gc.Config{Index: ts.ix, Blobs: ts.blobs, Grace: time.Minute,
		Now: func() time.Time { return time.Now().Add(time.Hour) }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if _, err := c.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	left := 0
	if err := ts.blobs.Walk(func(id blobs.ID, _ int64, _ time.Time) bool {
		left++
		if !keep[id] {
			t.Errorf("chunk %s of no standing object survived garbage collection", id)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if left != len(keep) {
		t.Errorf("%d chunks left; want the %d of the objects that stand", left, len(keep))
	}
}

// TestDeleteBucketNeedsEveryNode: a node that cannot be told of the fence
// could go on confirming writes into the bucket, so the delete fails with
// 503, and clears its fence: the bucket stays, and takes writes.
func TestDeleteBucketNeedsEveryNode(t *testing.T) {
	ts := newTestServer(t)
	var sets, lifts int
	ts.s.cfg.FenceEverywhere = func(_ context.Context, _ string, _ index.Timestamp, set bool) error {
		if set {
			sets++
			return errors.New("n2: unreachable")
		}
		lifts++
		return nil
	}
	ts.must(200, "PUT", "/bkt", nil)
	if rr := ts.do("DELETE", "/bkt", nil); rr.Code != 503 || errCode(rr) != "ServiceUnavailable" {
		t.Fatalf("DeleteBucket with a node unreachable: %d %s; want 503 ServiceUnavailable", rr.Code, rr.Body)
	}
	if sets != 1 || lifts != 1 {
		t.Fatalf("fence set on the others %d times, lifted %d; want once each", sets, lifts)
	}
	b, err := ts.ix.GetBucket(context.Background(), "bkt")
	if err != nil || !b.Live() {
		t.Fatalf("the bucket after the failed delete: %v, live %v", err, b.Live())
	}
	if _, fenced := activeFence(b, time.Now()); fenced {
		t.Fatal("the failed delete left its fence on the bucket")
	}
	ts.must(200, "PUT", "/bkt/obj", []byte("still here"))
}
