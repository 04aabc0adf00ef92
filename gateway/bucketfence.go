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
// Nothing orders the two, so DeleteBucket works in three steps, each a
// quorum write or read of the bucket record or of the listing:
//
//  1. it sets a fence on the bucket record (a config register);
//  2. it checks again that the bucket is empty;
//  3. if so it marks the bucket deleted, else it clears the fence and
//     answers BucketNotEmpty.
//
// A write, after committing its version, reads the bucket record again,
// uncached. No fence and the same live incarnation: it is acknowledged. If
// its read does not see the fence, the fence was not written when the
// write's commit completed, so step 2 sees the version and the delete
// fails. A fence seen means a delete is under way and its step 2 may or
// may not have seen the version: the write waits for step 3. Cleared, it
// is acknowledged; deleted, it removes its version and answers
// NoSuchBucket. Exactly one of the two fails.
//
// A node that is not a cluster node (Config.Standalone) is the only
// coordinator there is, so it knows every DeleteBucket: each registers its
// fence in the process before it writes it, and counts itself in
// Server.deleteGen once it has deleted. A write that, after its commit,
// finds no fence registered and the count as it was when its request came
// in stands without reading the bucket record. A registration its check
// missed came after its commit, so before that delete's second listing,
// which sees the version. A delete that finished before the check was
// counted; if that was before the request came in, the request read its
// bucket after the delete (the bucket cache drops what was read before a
// delete), and found it gone.
//
// A deleter that dies between 1 and 3 leaves its fence: a fence older
// than fenceVoidAfter is void, and a deleter gives up (clears its fence
// and answers 503) rather than commit its delete later than
// fenceCommitMax after setting it. The gap between the two covers clock
// skew between nodes and the time the last write takes to land.

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

// localFences counts the DeleteBuckets under way through this node, by
// bucket name.
type localFences struct {
	mu sync.Mutex // guards n
	n  map[string]int
}

// hold registers a fence on name and returns its release.
func (f *localFences) hold(name string) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[string]int{}
	}
	f.n[name]++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.n[name]--; f.n[name] == 0 {
			delete(f.n, name)
		}
	}
}

func (f *localFences) held(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[name] > 0
}

func (s *Server) deleteBucket(w http.ResponseWriter, r *http.Request, name, _ string) error {
	ctx := r.Context()
	defer s.buckets.forget(name)
	defer s.fences.hold(name)()
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
	s.bucketChanged(ctx, name)

	// clear lifts this delete's fence, and only it: a later fence, of
	// another DeleteBucket, has a later timestamp and wins the register.
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
	s.deleteGen.Add(1)
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
	if s.cfg.Standalone && !s.fences.held(b.Name) {
		if rc, _ := ctx.Value(ctxKey{}).(*requestContext); rc != nil && rc.deleteGen == s.deleteGen.Load() {
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
