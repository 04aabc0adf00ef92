package index

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
)

// Scrub re-reads every record of every partition this node owns, at a
// bounded pace: each must decode, and the tree computed from them must
// equal the stored, incrementally kept tree. A partition that fails (bit
// rot pebble reports as corruption, a value that no longer decodes, or a
// tree that no longer matches its records) is dropped and refilled from a
// co-owner; its records merge back as CRDTs, so nothing a co-owner has is
// lost, and what only this node had was wrong anyway.

// ScrubStats counts scrub work; safe for concurrent reads.
type ScrubStats struct {
	Passes, Partitions, Records, Corrupt, Repaired atomic.Int64
}

// Scrub makes one pass, reading at most recordsPerSecond (0: unlimited).
func (ix *Index) Scrub(ctx context.Context, recordsPerSecond float64, st *ScrubStats) error {
	p := ix.cfg.Placement()
	lim := &limiter{perSecond: recordsPerSecond}
	var errs []error
	for part := 0; part < p.Partitions(); part++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !ix.holds(p.WriteSets(uint16(part))) {
			continue
		}
		st.Partitions.Add(1)
		if err := ix.scrubPartition(ctx, uint16(part), lim, st); err != nil {
			st.Corrupt.Add(1)
			ix.cfg.Logger.Warn("scrub found a damaged partition", "partition", part, "err", err)
			if err := ix.refillPartition(ctx, uint16(part)); err != nil {
				errs = append(errs, fmt.Errorf("repair partition %d: %w", part, err))
				continue
			}
			st.Repaired.Add(1)
			ix.cfg.Logger.Info("scrub repaired a partition from a co-owner", "partition", part)
		}
	}
	st.Passes.Add(1)
	return errors.Join(errs...)
}

func (ix *Index) scrubPartition(ctx context.Context, part uint16, lim *limiter, st *ScrubStats) error {
	stored, err := ix.cfg.Store.Tree(part)
	if err != nil {
		return err
	}
	computed := &Tree{}
	n := 0
	err = ix.cfg.Store.scanPartition(part, func(k, v []byte) error {
		if n++; n%256 == 0 {
			if err := lim.wait(ctx, 256); err != nil {
				return err
			}
		}
		st.Records.Add(1)
		pk, err := ParseRecordKey(k)
		if err != nil {
			return err
		}
		if _, err := canonical(pk.Table, v); err != nil {
			return fmt.Errorf("record %x: %w", k, err)
		}
		h := itemHash(k, v)
		computed.Leaves[leafOf(k)].xor(h[:])
		return nil
	})
	if err != nil {
		return err
	}
	if *computed != *stored {
		// The records may have changed between reading the tree and the
		// scan; only a mismatch that holds when read again is damage.
		if again, err := ix.cfg.Store.Tree(part); err == nil && *again == *stored {
			if recomputed, err := ix.cfg.Store.ComputeTree(part); err == nil && *recomputed != *again {
				return fmt.Errorf("stored tree root %x, records give %x", again.Root(), recomputed.Root())
			}
		}
	}
	return nil
}

// refillPartition drops the partition's local records and copies them
// again from a co-owner.
func (ix *Index) refillPartition(ctx context.Context, part uint16) error {
	var peers []string
	for _, set := range ix.cfg.Placement().WriteSets(part) {
		for _, o := range set {
			if o != ix.cfg.Self && ix.cfg.Alive(o) && !slices.Contains(peers, o) {
				peers = append(peers, o)
			}
		}
	}
	if len(peers) == 0 {
		return errors.New("no co-owner reachable")
	}
	if _, err := ix.cfg.Store.DropPartition(part); err != nil {
		return err
	}
	lo := []byte{nsRecord, byte(part >> 8), byte(part)}
	hi := prefixEnd(lo)
	// Every reachable co-owner is read, not just one: a write this node
	// acknowledged with only one of them must come back.
	var errs []error
	refilled := 0
	for _, peer := range peers {
		from := lo
		for {
			resp, err := ix.call(ctx, peer, &Request{Op: OpRange, Lo: from, Hi: hi, Limit: 512})
			if err != nil {
				errs = append(errs, err)
				break
			}
			items := make([]Item, 0, len(resp.Range))
			for _, kv := range resp.Range {
				p, err := ParseRecordKey(kv.Key)
				if err != nil {
					return err
				}
				items = append(items, Item{Table: p.Table, Key: kv.Key, Value: kv.Value})
			}
			if len(items) > 0 {
				if _, err := ix.cfg.Store.Merge(items, true); err != nil {
					return err
				}
			}
			if len(resp.Range) < 512 {
				refilled++
				break
			}
			from = append(resp.Range[len(resp.Range)-1].Key, 0)
		}
	}
	if refilled == 0 {
		return errors.Join(errs...)
	}
	return nil
}
