// Package gc reclaims chunks that nothing references any more.
//
// A chunk may be deleted only when no live reference to it exists. A
// reference names the write that holds the chunk (an object version or a
// multipart part, by WriteID). It is live while it is not tombstoned and
// either its holder still exists or it is younger than the grace period:
// writes record their references before storing chunks and commit the
// holder last, so a young reference covers a write still in progress. The
// final check runs under the chunk store's per-chunk lock, atomically with
// the delete, so a writer that finds the chunk present and a collector
// that removes it cannot interleave.
package gc

import (
	"context"
	"log/slog"
	"time"

	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/index"
)

// Config configures a Collector.
type Config struct {
	Index *index.Index
	Blobs *blobs.Store
	// Grace is how long an unreferenced chunk, and a reference whose write
	// has not committed, are kept; 0 means 24h.
	Grace time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// UploadExpiry aborts multipart uploads initiated longer ago, so the
	// chunks of abandoned uploads become collectable; 0 means 7 days.
	UploadExpiry time.Duration
}

// Collector deletes unreferenced chunks.
type Collector struct {
	cfg Config
	// live holds the IDs of the live bucket incarnations, read during the
	// current sweep: a holder in any other incarnation is gone, whatever
	// its own record says (a bucket is deleted only when empty, but a
	// write that raced the delete may have left a version or an upload
	// in it).
	live      map[index.BucketID]bool
	liveFresh bool // live was read after the sweep's first miss
}

// Stats counts what one sweep did.
type Stats struct {
	Chunks, Deleted, RefsTombstoned int
	BytesFreed                      int64
	UploadsExpired                  int
	TombstonesPurged                int
}

// New returns a Collector.
func New(cfg Config) *Collector {
	if cfg.Grace == 0 {
		cfg.Grace = 24 * time.Hour
	}
	if cfg.UploadExpiry == 0 {
		cfg.UploadExpiry = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Collector{cfg: cfg}
}

// Run sweeps every interval until ctx is done.
func (c *Collector) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			st, err := c.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				c.cfg.Logger.Error("garbage collection sweep failed", "err", err)
				continue
			}
			c.cfg.Logger.Info("garbage collection sweep", "chunks", st.Chunks, "deleted", st.Deleted,
				"bytes_freed", st.BytesFreed, "uploads_expired", st.UploadsExpired, "tombstones_purged", st.TombstonesPurged)
		}
	}
}

// Sweep expires abandoned uploads and then makes one pass over the chunk
// store.
func (c *Collector) Sweep(ctx context.Context) (Stats, error) {
	var st Stats
	c.live, c.liveFresh = nil, false
	n, err := c.ExpireUploads(ctx)
	st.UploadsExpired = n
	if err != nil {
		return st, err
	}
	var firstErr error
	cutoff := c.cfg.Now().Add(-c.cfg.Grace)
	err = c.cfg.Blobs.Walk(func(id blobs.ID, size int64, mod time.Time) bool {
		if ctx.Err() != nil {
			return false
		}
		st.Chunks++
		if mod.After(cutoff) {
			return true
		}
		live, dead, err := c.liveRefs(ctx, index.BlobID(id), cutoff)
		if err != nil {
			// An owner out of reach: keep the chunk, try the next one.
			c.cfg.Logger.Debug("garbage collection skips a chunk", "chunk", id.String(), "err", err)
			return true
		}
		if live {
			return true
		}
		deleted, err := c.cfg.Blobs.Delete(id, func(mod time.Time) bool {
			if mod.After(cutoff) {
				return false
			}
			// Check again with writers of this chunk held off.
			live, _, err := c.liveRefs(ctx, index.BlobID(id), cutoff)
			return err == nil && !live
		})
		if err != nil {
			firstErr = err
			return false
		}
		if !deleted {
			return true
		}
		st.Deleted++
		st.BytesFreed += size
		if len(dead) > 0 {
			now := index.MakeTimestamp(c.cfg.Now(), 0)
			for _, r := range dead {
				r.Tombstone = now
			}
			if err := c.cfg.Index.PutRefs(ctx, index.BlobID(id), dead...); err != nil {
				firstErr = err
				return false
			}
			st.RefsTombstoned += len(dead)
		}
		return true
	})
	if err == nil {
		err = firstErr
	}
	if err != nil {
		return st, err
	}
	// Tombstones go last, and only those older than the grace period that
	// every owner holds.
	st.TombstonesPurged, err = c.cfg.Index.PurgeTombstones(ctx, index.MakeTimestamp(cutoff, 0))
	return st, err
}

// liveRefs reports whether blob id has a live reference, and returns the
// references found dead.
func (c *Collector) liveRefs(ctx context.Context, id index.BlobID, cutoff time.Time) (bool, []*index.Ref, error) {
	// Every owner of the blob's partition must answer: a reference that
	// reached only some of them still protects the blob.
	refs, err := c.cfg.Index.RefsAll(ctx, id)
	if err != nil {
		return false, nil, err
	}
	var dead []*index.Ref
	for _, r := range refs {
		if r.Tombstone != 0 {
			continue
		}
		if r.Created.Time().After(cutoff) {
			return true, nil, nil
		}
		live, err := c.holderLive(ctx, r)
		if err != nil {
			return false, nil, err
		}
		if live {
			return true, nil, nil
		}
		dead = append(dead, r)
	}
	return false, dead, nil
}

// bucketLive reports whether id is a live bucket incarnation. The list of
// live buckets is read once per sweep, and again at the first unknown id
// (a bucket created since), so a new bucket is never taken for a deleted
// one.
func (c *Collector) bucketLive(ctx context.Context, id index.BucketID) (bool, error) {
	if c.live[id] {
		return true, nil
	}
	if c.live != nil && c.liveFresh {
		return false, nil
	}
	buckets, err := c.cfg.Index.ListBuckets(ctx)
	if err != nil {
		return false, err
	}
	c.liveFresh = c.live != nil
	c.live = make(map[index.BucketID]bool, len(buckets))
	for _, b := range buckets {
		c.live[b.ID] = true
	}
	return c.live[id], nil
}

func (c *Collector) holderLive(ctx context.Context, r *index.Ref) (bool, error) {
	if r.Kind == index.RefVersion || r.Kind == index.RefPart {
		if live, err := c.bucketLive(ctx, r.Bucket); err != nil || !live {
			return false, err
		}
	}
	switch r.Kind {
	case index.RefVersion:
		o, err := c.cfg.Index.GetObjectByPK(ctx, index.ObjectPK(r.Bucket, r.Shard), r.Key)
		if err != nil || o == nil {
			return false, err
		}
		for i := range o.Versions {
			v := &o.Versions[i]
			if v.WriteID == r.WriteID && !v.Tombstone {
				return true, nil
			}
		}
		return false, nil
	case index.RefPart:
		u, err := c.cfg.Index.GetUploadByPK(ctx, index.ObjectPK(r.Bucket, r.Shard), r.Key, r.Upload)
		if err != nil || u == nil || u.Done != 0 {
			return false, err
		}
		p, err := c.cfg.Index.GetPart(ctx, r.Upload, r.Part)
		if err != nil || p == nil {
			return false, err
		}
		return p.WriteID == r.WriteID, nil
	default:
		// A kind this version does not know: keep the chunk.
		return true, nil
	}
}

// ExpireUploads aborts every multipart upload initiated before the expiry.
func (c *Collector) ExpireUploads(ctx context.Context) (int, error) {
	cutoff := index.MakeTimestamp(c.cfg.Now().Add(-c.cfg.UploadExpiry), 0)
	buckets, err := c.cfg.Index.ListBuckets(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, b := range buckets {
		l := c.cfg.Index.ListUploads(ctx, b, nil, "", 1000)
		for {
			e, ok := l.NextRaw()
			if !ok {
				break
			}
			u, err := index.DecodeUpload(e.Value)
			if err != nil {
				return n, err
			}
			if u.Done != 0 || u.Initiated >= cutoff {
				continue
			}
			u.Done = index.MakeTimestamp(c.cfg.Now(), 0)
			if err := c.cfg.Index.PutUpload(ctx, b, u); err != nil {
				return n, err
			}
			n++
		}
		if err := l.Err(); err != nil {
			return n, err
		}
	}
	return n, nil
}
