// stream_quorum_test.go runs quorums over the stream transport: a slow
// owner is timed out and the quorum completes with the others, so does it
// when an owner fails or stops reading altogether, every acknowledged
// write reads back, and a quorum that cannot be had fails within the
// request timeout.
package index

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringstore/ringstore/internal/rpc"
)

func TestQuorumOverStream(t *testing.T) {
	var stall atomic.Bool // n3 holds every request while set
	var down atomic.Bool  // n2 fails every request while set
	var held atomic.Int32
	wrap := func(node string, h rpc.Handler) rpc.Handler {
		return func(ctx context.Context, from string, body []byte) ([]byte, error) {
			switch {
			case node == "n3" && stall.Load():
				held.Add(1)
				time.Sleep(2 * time.Second)
			case node == "n2" && down.Load():
				return nil, errors.New("n2 is down")
			}
			return h(ctx, from, body)
		}
	}
	ix, stores := streamNodes(t, wrap, 300*time.Millisecond)
	ctx := context.Background()
	one, _ := benchObjects()
	put := func(i int) error {
		v := one.Versions[0]
		return ix.PutVersion(ctx, benchBucket, fmt.Sprintf("q/%d", i), &v)
	}
	readAll := func(n int) {
		t.Helper()
		for i := range n {
			o, err := ix.GetObject(ctx, benchBucket, fmt.Sprintf("q/%d", i))
			if err != nil || len(o.Versions) != 1 {
				t.Fatalf("object %d after its write was acknowledged: %v", i, err)
			}
		}
	}

	// All owners well: every write lands on all three.
	for i := range 20 {
		if err := put(i); err != nil {
			t.Fatal(err)
		}
	}
	readAll(20)

	// n3 answers after the timeout: writes still reach W=2 at once, and
	// reads settle with n1 and n2.
	stall.Store(true)
	start := time.Now()
	for i := 20; i < 30; i++ {
		if err := put(i); err != nil {
			t.Fatalf("write with one slow owner: %v", err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("10 writes with one slow owner took %v: the quorum waited for it", d)
	}
	readAll(30)
	stall.Store(false)
	if held.Load() == 0 {
		t.Fatal("n3 was never asked while stalled")
	}

	// n2 failing: writes need n1 and n3.
	down.Store(true)
	for i := 30; i < 40; i++ {
		if err := put(i); err != nil {
			t.Fatalf("write with one owner down: %v", err)
		}
	}
	readAll(40)
	// n3 holds the writes n2 missed, durably enough to read.
	for i := 30; i < 40; i++ {
		rec := ObjectRecord(benchBucket, fmt.Sprintf("q/%d", i), &one.Versions[0])
		rk := RecordKey(ix.partition(rec.Table, rec.PK), rec.Table, rec.PK, rec.SK)
		if v, err := stores["n3"].Get(rk); err != nil || v == nil {
			t.Fatalf("n3 lacks object %d written while n2 was down: %v", i, err)
		}
	}

	// With n2 down and n3 stalled, a write cannot reach its quorum: it
	// fails within the request timeout instead of hanging.
	stall.Store(true)
	start = time.Now()
	err := put(99)
	if !errors.Is(err, ErrQuorum) {
		t.Fatalf("write with one owner down and one stalled = %v, want ErrQuorum", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the failing write took %v", d)
	}
}

// TestQuorumOutlivesAHungOwner: an owner that stops reading (its handler
// hangs, so its connection's buffers fill) must not hold up writes that
// the other owners can acknowledge, however many are sent.
func TestQuorumOutlivesAHungOwner(t *testing.T) {
	release := make(chan struct{})
	wrap := func(node string, h rpc.Handler) rpc.Handler {
		if node != "n3" {
			return h
		}
		return func(ctx context.Context, from string, body []byte) ([]byte, error) {
			<-release
			return h(ctx, from, body)
		}
	}
	// A timeout generous enough that n2 answers within it even under the
	// race detector: the point is n3, which never does.
	ix, _ := streamNodes(t, wrap, 2*time.Second)
	defer close(release)
	ctx := context.Background()
	one, _ := benchObjects()
	big := one.Versions[0]
	big.Inline = make([]byte, 60<<10)
	// 2,000 writes of 60 KiB: far more than n3's 256 requests in service
	// and its socket buffers hold.
	const writers, each = 16, 125
	errs := make(chan error, writers)
	start := time.Now()
	for w := range writers {
		go func() {
			for i := range each {
				v := big
				if err := ix.PutVersion(ctx, benchBucket, fmt.Sprintf("hung/%d/%d", w, i), &v); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("write with one owner hung: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("writes with one owner hung did not finish in 60 s: the hung owner held them up")
		}
	}
	t.Logf("%d writes in %v with n3 hung", writers*each, time.Since(start))
}
