// refkeeper_test.go checks that a write in progress keeps its chunk
// references young while it runs, and refuses to commit when it could not.
package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/ringstore/ringstore/index"
)

func TestRefKeeperRenewsReferences(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.GCGrace = 200 * time.Millisecond })
	ts.must(200, "PUT", "/bkt", nil)
	b, err := ts.s.bucket(context.Background(), "bkt")
	if err != nil {
		t.Fatal(err)
	}
	k := ts.s.keepRefs(index.ObjectHolder(b, "key", index.NewWriteID()))
	defer k.stop()
	id := index.BlobID{1, 2, 3}
	if err := k.record(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	created := func() index.Timestamp {
		refs, err := ts.ix.RefsAll(context.Background(), id)
		if err != nil || len(refs) != 1 {
			t.Fatalf("refs: %v, %d", err, len(refs))
		}
		return refs[0].Created
	}
	first := created()
	deadline := time.Now().Add(5 * time.Second)
	for created() == first {
		if time.Now().After(deadline) {
			t.Fatal("the reference was not recorded again within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := k.check(); err != nil {
		t.Fatalf("check with renewed references: %v", err)
	}
	// Renewals that failed for more than half the grace period: the chunks
	// may be gone, so the write must not commit.
	k.mu.Lock()
	k.fresh = time.Now().Add(-time.Second)
	k.mu.Unlock()
	if err := k.check(); err == nil {
		t.Fatal("check passed with references last renewed a second ago (grace 200ms)")
	}
}
