// strip_test.go checks the listing form of object records: StripInline
// keeps every field a listing shows and drops only inline bodies, equal
// records strip to equal bytes, and a listing neither carries the bodies
// nor repairs a replica from records without them.
package index

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestStripInlineKeepsMetadata(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(5, 5))}
	stripped := 0
	for i := range 2000 {
		o := g.object()
		if i%3 == 0 && len(o.Versions) > 0 {
			o.Versions[0].Inline = bytes.Repeat([]byte{byte(i)}, 64<<10)
		}
		b := EncodeObject(o)
		s := StripInline(b)
		want, err := DecodeObjectMeta(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeObject(s)
		if err != nil {
			t.Fatalf("stripped record does not decode: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("record %d: stripped %+v, want the metadata %+v", i, got, want)
		}
		if len(s) < len(b) {
			stripped++
		}
		if !bytes.Equal(StripInline(EncodeObject(o)), s) {
			t.Fatal("equal records stripped to different bytes")
		}
		if !bytes.Equal(StripInline(s), s) {
			t.Fatal("stripping a stripped record changed it")
		}
	}
	if stripped < 1000 {
		t.Fatalf("only %d of 2000 records had a body to strip", stripped)
	}
	// What does not parse comes back whole, for its reader to refuse.
	bad := []byte{0x0a, 0x05, 0x01}
	if got := StripInline(bad); !bytes.Equal(got, bad) {
		t.Fatalf("malformed record stripped to %x", got)
	}
}

func FuzzStripInline(f *testing.F) {
	g := gen{rand.New(rand.NewPCG(1, 1))}
	for range 8 {
		f.Add(EncodeObject(g.object()))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := StripInline(b)
		want, err := DecodeObjectMeta(b)
		if err != nil {
			return
		}
		got, err := DecodeObjectMeta(s)
		if err != nil {
			t.Fatalf("a record that decodes strips to one that does not: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("stripped %+v, want %+v", got, want)
		}
	})
}

func TestListingReadsNoBodiesAndRepairsNothing(t *testing.T) {
	ctx := context.Background()
	ixs, lb := threeNodes(t)
	b := &Bucket{Name: "b", ID: BucketID{1}, Created: 1, Shards: 2}
	missedKey := RecordKey(ixs["n3"].partition(TableObjects, objectPK(b, "k-missed")), TableObjects, objectPK(b, "k-missed"), []byte("k-missed"))
	// The counting transport goes in before any write: a write returns at
	// its quorum and its third request may still be on its way.
	ct := &countingTransport{lb: lb, watch: missedKey}
	for _, ix := range ixs {
		ix.cfg.Transport = ct
	}
	body := bytes.Repeat([]byte("x"), 64<<10)
	for i := range 10 {
		v := &Version{ID: "null", Timestamp: Timestamp(10 + i), WriteID: WriteID{byte(i + 1)}, Size: int64(len(body)), ETag: fmt.Sprint(i), Inline: body}
		if err := ixs["n1"].PutVersion(ctx, b, fmt.Sprintf("k%d", i), v); err != nil {
			t.Fatal(err)
		}
	}
	// k-missed is written while n3 is down: the replicas now differ. n3
	// comes back only once the write's request to it has failed, or that
	// late request would fill n3 in.
	lb.set("n3", true)
	refused := lb.refusals("n3")
	missed := &Version{ID: "null", Timestamp: 50, WriteID: WriteID{99}, Size: int64(len(body)), ETag: "m", Inline: body}
	if err := ixs["n1"].PutVersion(ctx, b, "k-missed", missed); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return lb.refusals("n3") > refused })
	lb.set("n3", false)

	// n1 is down, so a listing through n2 reads n2 and n3, which differ.
	lb.set("n1", true)
	ct.reset()
	l := ixs["n2"].ListObjects(ctx, b, "", "", 100)
	n := 0
	for e, ok := l.Next(); ok; e, ok = l.Next() {
		n++
		if v := e.Object.Latest(); v.Size != int64(len(body)) || len(v.Inline) != 0 {
			t.Fatalf("%s listed with size %d and %d inline bytes", e.Key, v.Size, len(v.Inline))
		}
	}
	if err := l.Err(); err != nil || n != 11 {
		t.Fatalf("listed %d keys (%v), want 11", n, err)
	}
	if c := ct.counts(); c.rangeBytes > 16<<10 {
		t.Fatalf("the listing moved %d bytes from the other replica for 11 keys: it carried bodies", c.rangeBytes)
	}
	// Read repairs go out in the background: give any a moment to land.
	time.Sleep(200 * time.Millisecond)
	lb.set("n1", false)
	if raw, _ := lb.stores["n3"].Get(missedKey); ct.counts().merges != 0 || raw != nil {
		t.Fatalf("the listing sent %d merges and left n3 a record of %d bytes for k-missed: it repaired from records without their bodies", ct.counts().merges, len(raw))
	}
	// n3 still lacks k-missed; a read of it returns the body and repairs n3
	// with the whole record.
	o, err := ixs["n3"].GetObject(ctx, b, "k-missed")
	if err != nil || o == nil || !bytes.Equal(o.Latest().Inline, body) {
		t.Fatalf("read of k-missed after the listing: %v", err)
	}
	waitFor(t, func() bool {
		raw, _ := lb.stores["n3"].Get(missedKey)
		if raw == nil {
			return false
		}
		o, err := DecodeObject(raw)
		return err == nil && bytes.Equal(o.Latest().Inline, body)
	})
}

// countingTransport adds up the bytes of the range replies of remote
// replicas, and counts the merges of one watched key that reached n3.
type countingTransport struct {
	lb    *loopback
	watch []byte

	mu sync.Mutex
	c  transportCounts
}

type transportCounts struct {
	rangeBytes, merges int
}

func (c *countingTransport) Call(ctx context.Context, node string, req *Request) (*Response, error) {
	resp, err := c.lb.Call(ctx, node, req)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && req.Op == OpRange {
		for _, kv := range resp.Range {
			c.c.rangeBytes += len(kv.Value)
		}
	}
	if req.Op == OpMerge && node == "n3" {
		for _, it := range req.Items {
			if err == nil && bytes.Equal(it.Key, c.watch) {
				c.c.merges++
			}
		}
	}
	return resp, err
}

func (c *countingTransport) counts() transportCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c
}

func (c *countingTransport) reset() {
	c.mu.Lock()
	c.c = transportCounts{}
	c.mu.Unlock()
}
