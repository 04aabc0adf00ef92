package gateway

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/ringstore/ringstore/index"
)

// A write into a bucket being deleted must either make the DeleteBucket
// fail (the bucket is not empty) or fail itself, never both succeed: a
// version committed into a deleted incarnation was acknowledged and could
// never be read, even after the bucket was created again.
//
// DeleteBucket checks that the bucket is empty and marks it deleted; a
// write reads its bucket (cached for a second), then commits its version.
// Nothing orders the two, so DeleteBucket works in steps:
//
//  1. it sets a fence on the bucket record (a config register, by quorum
//     write);
//  2. it tells every node of the layout, and needs every one to answer:
//     each registers the fence in memory (Server.FenceBucket);
//  3. it checks again that the bucket is empty (a quorum listing);
//  4. if so it marks the bucket deleted, else it clears the fence and
//     answers BucketNotEmpty; either way it tells the nodes the fence is
//     lifted.
//
// A write, after committing its version, asks its own node: no fence
// registered for the bucket, no fence learnt at all since the request came
// in (Server.fenceGen), and none on the bucket record the request read,
// and it stands. A registration its check missed came after its commit,
// so before the delete's second listing, which sees the version and
// fails. A fence learnt before the request came in was on the bucket
// record before that (step 1 precedes step 2), and the request read its
// bucket after it, and so read the fence, or the outcome of the delete:
// the bucket cache drops what was read before a fence was learnt and
// keeps no record with a fence on it. Otherwise the write reads the bucket
// record until the fence is resolved: cleared, it stands; deleted, it
// takes its version back and answers NoSuchBucket. Exactly one of the two
// fails, and a write pays for it only while a delete of its bucket is
// under way.
//
// A node that does not answer step 2 (down, or cut off, while it could
// still coordinate writes) fails the delete with 503: a deleted bucket
// must not depend on a node that never heard of the fence. A node that
// restarts forgets its fences, and reads its buckets afresh, finding them.
//
// A deleter that dies leaves its fence on the record: a fence older than
// fenceVoidAfter is void, and a deleter gives up (clears its fence and
// answers 503) rather than delete later than fenceCommitMax after setting
// it. The gap between the two covers clock skew between nodes and the
// time the last write takes to land.

// deleteFenceConfig names the bucket config register of the fence: a
// non-empty value is a fence, an empty one a cleared fence.
const deleteFenceConfig = "ringstore.delete-fence"

const (
	fenceCommitMax = 10 * time.Second
	fenceVoidAfter = 30 * time.Second
)

// activeFence returns the timestamp of the bucket's delete fence if one is
// set and not void by now.
func activeFence(b *index.Bucket, now time.Time) (index.Timestamp, bool) {
	for _, c := range b.Configs {
		if c.Name == deleteFenceConfig && len(c.Value) > 0 && now.Sub(c.Timestamp.Time()) < fenceVoidAfter {
			return c.Timestamp, true
		}
	}
	return 0, false
}

// setConfig returns a copy of b with config name set to value at ts.
func setConfig(b *index.Bucket, name string, ts index.Timestamp, value []byte) *index.Bucket {
	next := *b
	next.Configs = []index.BucketConfig{{Name: name, Timestamp: ts, Value: value}}
	return &next
}

// fenceSet holds the delete fences this node knows of, by bucket name and
// fence timestamp, each until it is lifted or void.
type fenceSet struct {
	mu sync.Mutex // guards m
	m  map[string]map[index.Timestamp]time.Time
}

func (f *fenceSet) set(name string, ts index.Timestamp, until time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]map[index.Timestamp]time.Time{}
	}
	if f.m[name] == nil {
		f.m[name] = map[index.Timestamp]time.Time{}
	}
	f.m[name][ts] = until
}

func (f *fenceSet) lift(name string, ts index.Timestamp) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m[name], ts)
	if len(f.m[name]) == 0 {
		delete(f.m, name)
	}
}

// held reports whether a fence on name is known and not void.
func (f *fenceSet) held(name string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ts, until := range f.m[name] {
		if now.Before(until) {
			return true
		}
		delete(f.m[name], ts)
	}
	delete(f.m, name)
	return false
}

// FenceBucket registers (set) or lifts a delete fence on bucket name, at
// timestamp ts: a DeleteBucket through another node tells every node of
// it (step 2 above) and answers only once each has registered it.
func (s *Server) FenceBucket(name string, ts index.Timestamp, set bool) {
	if !set {
		s.fences.lift(name, ts)
		return
	}
	s.learnFence(name, ts)
}

// learnFence registers a fence and counts it: a request that came in
// before takes the slow way, and bucket records read before are stale.
func (s *Server) learnFence(name string, ts index.Timestamp) {
	s.fences.set(name, ts, ts.Time().Add(fenceVoidAfter))
	s.fenceGen.Add(1)
	s.buckets.forget(name)
}

// noteFence registers the fence of a bucket record just read, if it has a
// live one: a node that restarted, or never heard of a delete, learns of
// it so.
func (s *Server) noteFence(b *index.Bucket) {
	if ts, ok := activeFence(b, s.cfg.Index.Clock().Now().Time()); ok && !s.fences.held(b.Name, time.Now()) {
		s.learnFence(b.Name, ts)
	}
}

func (s *Server) deleteBucket(w http.ResponseWriter, r *http.Request, name, _ string) error {
	ctx := r.Context()
	defer s.buckets.forget(name)
	ix := s.cfg.Index
	var fence index.Timestamp
	b, err := ix.UpdateBucket(ctx, name, func(cur *index.Bucket) (*index.Bucket, error) {
		if !cur.Live() {
			return nil, ErrNoSuchBucket.with("BucketName", name)
		}
		// Most deletes of a bucket that is not empty end here, with no
		// fence to clear.
		if err := s.checkEmpty(ctx, cur); err != nil {
			return nil, err
		}
		fence = ix.Clock().Now()
		return setConfig(cur, deleteFenceConfig, fence, []byte{1}), nil
	})
	if err != nil {
		return err
	}
	fenced := time.Now()
	s.learnFence(name, fence)
	defer func() {
		s.FenceBucket(name, fence, false)
		if s.cfg.FenceEverywhere != nil {
			if err := s.cfg.FenceEverywhere(context.WithoutCancel(ctx), name, fence, false); err != nil {
				s.log.Debug("a lifted bucket fence did not reach every node", "bucket", name, "err", err)
			}
		}
	}()
	// clear lifts this delete's fence from the record, and only it: a
	// later fence, of another DeleteBucket, has a later timestamp and wins
	// the register.
	clear := func() {
		cctx := context.WithoutCancel(ctx)
		_, _ = ix.UpdateBucket(cctx, name, func(cur *index.Bucket) (*index.Bucket, error) {
			if !cur.Live() || cur.ID != b.ID {
				return nil, nil
			}
			return setConfig(cur, deleteFenceConfig, fence+1, nil), nil
		})
		s.bucketChanged(cctx, name)
	}
	if s.cfg.FenceEverywhere != nil {
		if err := s.cfg.FenceEverywhere(ctx, name, fence, true); err != nil {
			clear()
			s.log.Warn("bucket not deleted: not every node learnt of the delete", "bucket", name, "err", err)
			return ErrServiceUnavailable.msg("Not every node of the cluster answered; the bucket was not deleted. Please retry.")
		}
	}
	if err := s.checkEmpty(ctx, b); err != nil {
		clear()
		return err
	}
	_, err = ix.UpdateBucket(ctx, name, func(cur *index.Bucket) (*index.Bucket, error) {
		if !cur.Live() || cur.ID != b.ID {
			return nil, ErrNoSuchBucket.with("BucketName", name)
		}
		if time.Since(fenced) > fenceCommitMax {
			return nil, ErrServiceUnavailable.msg("Deleting the bucket took too long; please retry.")
		}
		del := *cur
		del.Configs = nil
		del.Deleted = ix.Clock().Now()
		return &del, nil
	})
	if err != nil {
		clear()
		return err
	}
	s.bucketChanged(ctx, name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkEmpty answers BucketNotEmpty when b holds an object version.
func (s *Server) checkEmpty(ctx context.Context, b *index.Bucket) error {
	l := s.cfg.Index.ListObjects(ctx, b, "", "", 1)
	for {
		e, ok := l.Next()
		if !ok {
			break
		}
		if len(e.Object.Live()) > 0 {
			return ErrBucketNotEmpty.with("BucketName", b.Name)
		}
	}
	return l.Err()
}

// confirmCommit is the write's side of the fence (see above): called once
// v is committed into b, it answers nil when the write stands, and
// NoSuchBucket, with v removed again, when a concurrent DeleteBucket
// deleted the bucket without seeing it.
func (s *Server) confirmCommit(ctx context.Context, b *index.Bucket, key string, v *index.Version) error {
	if rc, _ := ctx.Value(ctxKey{}).(*requestContext); rc != nil && rc.fenceGen == s.fenceGen.Load() && !s.fences.held(b.Name, time.Now()) {
		if _, fenced := activeFence(b, s.cfg.Index.Clock().Now().Time()); !fenced {
			return nil
		}
	}
	ix := s.cfg.Index
	wait := 5 * time.Millisecond
	for {
		cur, err := ix.GetBucket(ctx, b.Name)
		if err != nil {
			return err
		}
		if !cur.Live() || cur.ID != b.ID {
			// Deleted without this version: take it back, so nothing
			// unreachable is left (garbage collection also counts the
			// chunks of a deleted incarnation's versions as free).
			tomb := index.Version{ID: v.ID, Timestamp: ix.Clock().Now(), WriteID: index.NewWriteID(), Tombstone: true}
			if err := ix.PutVersion(context.WithoutCancel(ctx), b, key, &tomb); err != nil {
				s.log.Warn("could not remove a version written into a deleted bucket", "bucket", b.Name, "key", key, "err", err)
			}
			return ErrNoSuchBucket.with("BucketName", b.Name)
		}
		if _, ok := activeFence(cur, ix.Clock().Now().Time()); !ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}
