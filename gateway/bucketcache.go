package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/ringstore/ringstore/index"
)

// bucketCache keeps recently read live bucket records for a short time:
// every object request needs its bucket, and in a cluster reading it is a
// quorum read. A bucket changed through this node is forgotten at once;
// one changed through another node (deleted, versioning switched) is seen
// here within the TTL, as S3 itself documents for these changes. Absent
// buckets are never cached, so a bucket created anywhere is usable at once.
type bucketCache struct {
	ttl time.Duration
	now func() time.Time
	// gen, if set, counts the delete fences this node learnt: an entry
	// read before a fence was learnt is stale after it, whenever it was
	// stored.
	gen func() uint64

	mu sync.Mutex // guards m
	m  map[string]cachedBucket
}

type cachedBucket struct {
	b   *index.Bucket
	at  time.Time
	gen uint64 // gen() before the record was read
}

// bucketCacheMax bounds the cache; past it the cache starts over.
const bucketCacheMax = 10000

func newBucketCache(ttl time.Duration, now func() time.Time) *bucketCache {
	return &bucketCache{ttl: ttl, now: now, m: map[string]cachedBucket{}}
}

func (c *bucketCache) get(name string) *index.Bucket {
	if c.ttl <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[name]
	if !ok || c.now().Sub(e.at) > c.ttl || e.gen != c.generation() {
		return nil
	}
	return e.b
}

func (c *bucketCache) generation() uint64 {
	if c.gen == nil {
		return 0
	}
	return c.gen()
}

// put stores b, read when generation() was gen.
func (c *bucketCache) put(b *index.Bucket, gen uint64) {
	if c.ttl <= 0 || !b.Live() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= bucketCacheMax {
		c.m = map[string]cachedBucket{}
	}
	c.m[b.Name] = cachedBucket{b: b, at: c.now(), gen: gen}
}

func (c *bucketCache) forget(name string) {
	c.mu.Lock()
	delete(c.m, name)
	c.mu.Unlock()
}

// ForgetBucket drops a bucket from this node's cache: another node changed
// it (Config.BucketChanged).
func (s *Server) ForgetBucket(name string) { s.buckets.forget(name) }

// bucketChanged forgets a bucket changed through this node, here and, by
// Config.BucketChanged, on the other nodes.
func (s *Server) bucketChanged(ctx context.Context, name string) {
	s.buckets.forget(name)
	if s.cfg.BucketChanged != nil {
		s.cfg.BucketChanged(ctx, name)
	}
}
