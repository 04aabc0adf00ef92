package blobs

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Chunk anti-entropy: scrub walks only the chunks a node has, and a read
// repairs only the chunk it reads, so a chunk missing from an owner (a
// disk replaced, a write that reached only a quorum, a file quarantined)
// would stay missing, and the cluster would run on fewer copies without
// anyone noticing. RepairMissing walks the chunks the node should hold (the
// index knows them from the references in its partitions), and fetches
// each one it lacks from another owner, checked against its id, at a
// bounded rate.

// RepairStats counts chunk anti-entropy work; safe for concurrent reads.
type RepairStats struct {
	// Passes is the number of finished passes.
	Passes atomic.Int64
	// Checked counts chunks looked for on this node's disk.
	Checked atomic.Int64
	// Missing counts chunks found absent; Fetched those then copied from
	// another node, FetchedBytes their bytes.
	Missing, Fetched, FetchedBytes atomic.Int64
	// Unavailable counts missing chunks no other node could give.
	Unavailable atomic.Int64
	// LastMissing is the number of chunks the last finished pass found
	// missing, LastPassUnixNano when it finished.
	LastMissing, LastPassUnixNano atomic.Int64
}

// RepairMissing makes one pass over the chunks that owned calls its
// argument with (the chunks this node should hold), fetching the ones this
// node lacks, at most bytesPerSecond (0: unlimited). A chunk no other node
// could give is not asked for again before retryAfter has passed, so a
// reference whose chunk is gone everywhere (a write that failed before
// storing it) costs one attempt per retryAfter, not one per pass.
func (r *Replicated) RepairMissing(ctx context.Context, owned func(fn func(ID) bool) error, bytesPerSecond float64, retryAfter time.Duration, st *RepairStats) (RepairPass, error) {
	start := time.Now()
	var fetched int64
	var pass RepairPass
	err := owned(func(id ID) bool {
		if ctx.Err() != nil {
			return false
		}
		pass.Checked++
		st.Checked.Add(1)
		if r.cfg.Local.Has(id) {
			return true
		}
		pass.Missing++
		st.Missing.Add(1)
		if !r.unavailable.due(id, time.Now()) {
			return true
		}
		if bytesPerSecond > 0 {
			ahead := time.Duration(float64(fetched)/bytesPerSecond*float64(time.Second)) - time.Since(start)
			if ahead > 0 {
				select {
				case <-ctx.Done():
					return false
				case <-time.After(ahead):
				}
			}
		}
		n, err := r.fetchLocal(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			st.Unavailable.Add(1)
			r.unavailable.add(id, time.Now().Add(retryAfter))
			r.cfg.Logger.Warn("chunk anti-entropy: no other node gave a missing chunk", "chunk", id.String(), "err", err)
			return true
		}
		fetched += int64(n)
		pass.Fetched++
		st.Fetched.Add(1)
		st.FetchedBytes.Add(int64(n))
		if r.cfg.OnRepair != nil {
			r.cfg.OnRepair(r.cfg.Self)
		}
		return true
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return pass, err
	}
	st.Passes.Add(1)
	st.LastMissing.Store(int64(pass.Missing))
	st.LastPassUnixNano.Store(time.Now().UnixNano())
	if pass.Missing > 0 {
		r.cfg.Logger.Info("chunk anti-entropy pass", "checked", pass.Checked, "missing", pass.Missing, "fetched", pass.Fetched,
			"fetched_bytes", fetched, "duration", time.Since(start))
	}
	return pass, nil
}

// RepairPass is what one pass of RepairMissing found and did.
type RepairPass struct {
	Checked, Missing, Fetched int
}

// fetchLocal copies chunk id from another node to this one and returns its
// length.
func (r *Replicated) fetchLocal(ctx context.Context, id ID) (int, error) {
	c, err := r.fetch(ctx, id)
	if err != nil {
		return 0, err
	}
	if err := r.putLocal("", c, false); err != nil {
		return 0, err
	}
	return c.Len(), nil
}

// retrySet remembers chunks not to ask other nodes for until a time. It is
// bounded: past retrySetMax entries the oldest deadlines go first.
type retrySet struct {
	mu sync.Mutex // guards m
	m  map[ID]time.Time
}

const retrySetMax = 100000

func (s *retrySet) due(id ID, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[id]
	if ok && now.After(t) {
		delete(s.m, id)
	}
	return !ok || now.After(t)
}

func (s *retrySet) add(id ID, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[ID]time.Time{}
	}
	if len(s.m) >= retrySetMax {
		now := time.Now()
		for k, t := range s.m {
			if now.After(t) || len(s.m) >= retrySetMax {
				delete(s.m, k)
			}
		}
	}
	s.m[id] = until
}

// errNoCopy means no node asked had a good copy of a chunk.
var errNoCopy = errors.New("blobs: no good copy on any other node")
