package blobs

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Scrub re-reads every chunk this node holds, at a bounded pace, and
// verifies it against its id; a chunk that fails (it is quarantined by the
// read) is fetched from another owner and written back. Bit rot is found
// this way before a client reads the chunk.

// ScrubStats counts scrub work; safe for concurrent reads.
type ScrubStats struct {
	Passes, Chunks, Bytes, Corrupt, Repaired, Unrepaired atomic.Int64
}

// Scrub makes one pass over the local chunks, reading at most
// bytesPerSecond (0: unlimited).
func (r *Replicated) Scrub(ctx context.Context, bytesPerSecond float64, st *ScrubStats) error {
	start := time.Now()
	var read int64
	var errs []error
	err := r.cfg.Local.Walk(func(id ID, size int64, _ time.Time) bool {
		if ctx.Err() != nil {
			return false
		}
		if bytesPerSecond > 0 {
			// Pace: sleep until the bytes read so far fit the rate.
			ahead := time.Duration(float64(read)/bytesPerSecond*float64(time.Second)) - time.Since(start)
			if ahead > 0 {
				select {
				case <-ctx.Done():
					return false
				case <-time.After(ahead):
				}
			}
		}
		read += size
		st.Chunks.Add(1)
		st.Bytes.Add(size)
		if _, err := r.cfg.Local.GetVerified(id, nil); err == nil || errors.Is(err, ErrNotFound) {
			return true // fine, or deleted since the walk listed it
		} else if !errors.Is(err, ErrCorrupt) {
			errs = append(errs, err)
			return len(errs) < 10
		}
		st.Corrupt.Add(1)
		r.cfg.Logger.Warn("scrub found a corrupt chunk", "chunk", id.String())
		if err := r.repairLocal(ctx, id); err != nil {
			st.Unrepaired.Add(1)
			r.cfg.Logger.Error("scrub could not repair a chunk", "chunk", id.String(), "err", err)
			return true
		}
		st.Repaired.Add(1)
		r.cfg.Logger.Info("scrub repaired a chunk", "chunk", id.String())
		return true
	})
	if err != nil {
		errs = append(errs, err)
	}
	st.Passes.Add(1)
	return errors.Join(errs...)
}

// repairLocal fetches a good copy of id from another owner (or fallback)
// and stores it here.
func (r *Replicated) repairLocal(ctx context.Context, id ID) error {
	_, err := r.fetchLocal(ctx, id)
	return err
}

// fetch returns a good copy of id from another node: the owners of every
// active layout version, then the fallbacks (which may hold it as a hint),
// each copy checked against the id. Nodes known down are not asked: a
// call to one waits for its timeout.
func (r *Replicated) fetch(ctx context.Context, id ID) (Chunk, error) {
	p := r.cfg.Placement()
	var errs []error
	candidates := append(append([]string{}, p.ChunkOwners(id)...), p.ChunkFallbacks(id)...)
	for _, sets := range p.ChunkWriteSets(id) {
		candidates = append(candidates, sets...)
	}
	tried := map[string]bool{r.cfg.Self: true}
	for _, node := range candidates {
		if tried[node] || !r.cfg.Alive(node) {
			continue
		}
		tried[node] = true
		data, err := r.call(ctx, node, serviceGet, id[:])
		var c Chunk
		if err == nil {
			c, err = Check(id, data)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", node, err))
			continue
		}
		return c, nil
	}
	return Chunk{}, withCauses(fmt.Errorf("chunk %s: %w", id, errNoCopy), errs)
}
