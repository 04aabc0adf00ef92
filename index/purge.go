package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
)

// Tombstone collection. A tombstone (a deleted version slot, a revoked
// key, a finished upload, a let-go blob reference, a deleted bucket
// incarnation) must outlive every stale copy of what it deletes, or that
// copy would come back. So a tombstone is dropped only when (1) it is older
// than the grace period, which outlasts hints and repairs in flight, and
// (2) every owner of its partition holds the same state once purged, so no
// owner still holds what the tombstone deleted. Each owner checks and drops
// its own copy; the first to do so does not stop the others, because the
// check compares states after purging.

// purgeRecord returns the record without its tombstones older than
// cutoff, nil if nothing of it remains, and whether it changed.
func purgeRecord(t Table, v []byte, cutoff Timestamp) ([]byte, bool, error) {
	switch t {
	case TableObjects:
		o, err := DecodeObject(v)
		if err != nil {
			return nil, false, err
		}
		kept := slices.DeleteFunc(slices.Clone(o.Versions), func(x Version) bool { return x.Tombstone && x.Timestamp < cutoff })
		if len(kept) == len(o.Versions) {
			return v, false, nil
		}
		if len(kept) == 0 {
			return nil, true, nil
		}
		return EncodeObject(&Object{Versions: kept}), true, nil
	case TableRefs:
		r, err := DecodeRef(v)
		if err != nil {
			return nil, false, err
		}
		if r.Tombstone != 0 && r.Tombstone < cutoff {
			return nil, true, nil
		}
	case TableUploads:
		u, err := DecodeUpload(v)
		if err != nil {
			return nil, false, err
		}
		if u.Done != 0 && u.Done < cutoff {
			return nil, true, nil
		}
	case TableKeys:
		k, err := DecodeAccessKey(v)
		if err != nil {
			return nil, false, err
		}
		if k.Deleted != 0 && k.Deleted < cutoff {
			return nil, true, nil
		}
	case TableBuckets:
		b, err := DecodeBucket(v)
		if err != nil {
			return nil, false, err
		}
		if b.Deleted != 0 && b.Deleted < cutoff {
			return nil, true, nil
		}
	}
	return v, false, nil
}

// PurgeTombstones drops, from this node's records, the tombstones older
// than cutoff that every owner agrees on. It returns how many records it
// rewrote or deleted.
func (ix *Index) PurgeTombstones(ctx context.Context, cutoff Timestamp) (int, error) {
	p := ix.cfg.Placement()
	hinted, err := ix.hintedPartitions(ctx, p)
	if err != nil {
		// A node out of reach may hold hints anywhere: purge nothing now.
		ix.cfg.Logger.Info("tombstone purge waits: not every node told which partitions it holds hints for", "err", err)
		return 0, nil
	}
	n := 0
	var errs []error
	for part := 0; part < p.Partitions(); part++ {
		sets := p.WriteSets(uint16(part))
		if len(sets) != 1 || !slices.Contains(sets[0], ix.cfg.Self) {
			// Not an owner, or data is moving: nothing is purged meanwhile.
			continue
		}
		if hinted[part] {
			// A hint may be an older state of a record whose tombstone
			// is due: delivered after the purge, it would bring back
			// what the tombstone deleted. Wait until it is handed off.
			continue
		}
		type cand struct{ key, value, purged []byte }
		var cands []cand
		err := ix.cfg.Store.scanPartition(uint16(part), func(k, v []byte) error {
			pk, err := ParseRecordKey(k)
			if err != nil {
				return err
			}
			pv, changed, err := purgeRecord(pk.Table, v, cutoff)
			if err != nil || !changed {
				return err
			}
			cands = append(cands, cand{bytes.Clone(k), bytes.Clone(v), pv})
			return nil
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		owners := sets[0]
		for i := 0; i < len(cands); i += 256 {
			batch := cands[i:min(i+256, len(cands))]
			keys := make([][]byte, len(batch))
			for j, c := range batch {
				keys[j] = c.key
			}
			agreed := make([]bool, len(batch))
			for j := range agreed {
				agreed[j] = true
			}
			for _, o := range owners {
				if o == ix.cfg.Self {
					continue
				}
				resp, err := ix.call(ctx, o, &Request{Op: OpGet, Keys: keys})
				if err != nil || len(resp.Values) != len(keys) {
					// An owner out of reach cannot agree: purge nothing here.
					for j := range agreed {
						agreed[j] = false
					}
					break
				}
				for j, theirs := range resp.Values {
					pk, _ := ParseRecordKey(keys[j])
					tp := theirs
					if theirs != nil {
						if tp, _, err = purgeRecord(pk.Table, theirs, cutoff); err != nil {
							agreed[j] = false
							continue
						}
					}
					if !bytes.Equal(tp, batch[j].purged) {
						agreed[j] = false
					}
				}
			}
			for j, c := range batch {
				if !agreed[j] {
					continue
				}
				ok, err := ix.cfg.Store.Replace(c.key, c.value, c.purged)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if ok {
					n++
				}
			}
		}
	}
	return n, errors.Join(errs...)
}

// hintedPartitions asks every node of the layout (owners of any active
// version and fallbacks) which partitions it holds hints for. Hints live
// on fallbacks, which are not owners, so the owners' agreement that a
// tombstone may go says nothing of them.
func (ix *Index) hintedPartitions(ctx context.Context, p Placement) ([]bool, error) {
	nodes := map[string]bool{}
	for part := range p.Partitions() {
		for _, set := range p.WriteSets(uint16(part)) {
			for _, n := range set {
				nodes[n] = true
			}
		}
		for _, n := range p.Fallbacks(uint16(part)) {
			nodes[n] = true
		}
	}
	hinted := make([]bool, p.Partitions())
	for n := range nodes {
		resp, err := ix.call(ctx, n, &Request{Op: OpHintedParts})
		if err != nil {
			return nil, fmt.Errorf("hinted partitions of %s: %w", n, err)
		}
		if len(resp.Values) != 1 {
			return nil, fmt.Errorf("hinted partitions of %s: %d values", n, len(resp.Values))
		}
		for i, b := range resp.Values[0] {
			for bit := range 8 {
				if part := i*8 + bit; b&(1<<bit) != 0 && part < len(hinted) {
					hinted[part] = true
				}
			}
		}
	}
	return hinted, nil
}

// Replace sets key to new (nil: deletes it) if it still holds old,
// keeping the tree in step. It is the one write that bypasses the merge:
// tombstone collection uses it once every owner agreed.
func (s *Store) Replace(key, old, new []byte) (bool, error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.leave()
	if err := s.writable(); err != nil {
		return false, fmt.Errorf("replace record: %w", err)
	}
	unlock := s.lockKeys([][]byte{key})
	cur, err := s.get(key)
	if err != nil || !bytes.Equal(cur, old) {
		unlock()
		return false, err
	}
	b := s.db.NewBatch()
	if new == nil {
		err = b.Delete(key, nil)
	} else {
		s.addKeys([][]byte{key})
		err = b.Set(key, new, nil)
	}
	if tk, delta := recordTreeDelta(key, cur, new); err == nil && tk != nil {
		err = b.Merge(tk, delta, nil)
	}
	if err != nil {
		_ = b.Close()
		unlock()
		return false, err
	}
	if err := s.commit(b, true, unlock); err != nil {
		return false, fmt.Errorf("replace record: %w", err)
	}
	return true, nil
}

// RefsAll returns the reference records of blob id as every owner of its
// partition holds them, merged; it fails unless every owner answers.
// Garbage collection decides with it, so a reference that reached only
// some owners still counts.
func (ix *Index) RefsAll(ctx context.Context, id BlobID) ([]*Ref, error) {
	part := ix.partition(TableRefs, id[:])
	prefix := recordPrefix(part, TableRefs, id[:])
	v := ix.view(part)
	var owners []string
	for _, set := range v.writeSets() {
		for _, o := range set {
			if !slices.Contains(owners, o) {
				owners = append(owners, o)
			}
		}
	}
	v.owners = owners
	m := newRead(v, TableRefs, &Request{Op: OpRange, Lo: prefix, Hi: prefixEnd(prefix)}, len(owners)).withSelf(ix.cfg.Self)
	if err := ix.run(ctx, m); err != nil {
		return nil, fmt.Errorf("refs of %s: %w", id, err)
	}
	kvs, _, _, err := m.rangeResult()
	if err != nil {
		return nil, fmt.Errorf("refs of %s: %w", id, err)
	}
	// A fallback standing in for an owner does not count as that owner.
	for _, t := range m.list {
		if t.forOwner != "" {
			return nil, fmt.Errorf("refs of %s: owner %s unreachable", id, t.forOwner)
		}
	}
	out := make([]*Ref, 0, len(kvs))
	for _, kv := range kvs {
		r, err := DecodeRef(kv.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
