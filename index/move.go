package index

import (
	"context"
	"errors"
	"fmt"
)

// Moving records after a layout change (see ring/history.go for the
// protocol). SyncMoved pushes what this node holds to the current owners;
// DropUnowned deletes what it holds for partitions it owns in no active
// version, once the move is over.

// MoveView is what the move needs to know of the placement: the owners of
// each partition in every active layout version, the current one last.
type MoveView interface {
	Partitions() int
	WriteSets(p uint16) [][]string
}

// SyncMoved makes every current owner of each partition this node holds
// records of have them, by anti-entropy with each one. It fails (to be
// retried) when an owner cannot be reached.
func (ix *Index) SyncMoved(ctx context.Context, v MoveView) error {
	s := ix.syncer(0)
	s.confirm = 0 // a move's differences are real: the new owners lack data
	byPeer := map[string][]uint16{}
	var peers []string
	for part := 0; part < v.Partitions(); part++ {
		sets := v.WriteSets(uint16(part))
		if !ix.holds(sets) || len(sets) < 2 {
			continue
		}
		for _, o := range sets[len(sets)-1] {
			if o == ix.cfg.Self {
				continue
			}
			if _, ok := byPeer[o]; !ok {
				peers = append(peers, o)
			}
			byPeer[o] = append(byPeer[o], uint16(part))
		}
	}
	var errs []error
	for _, peer := range peers {
		if err := s.syncPeer(ctx, peer, byPeer[peer]); err != nil {
			errs = append(errs, fmt.Errorf("move records to %s: %w", peer, err))
		}
	}
	if s.truncated {
		errs = append(errs, errMoveIncomplete)
	}
	return errors.Join(errs...)
}

// errMoveIncomplete means more records are left to move than one pass
// moves; the caller runs SyncMoved again.
var errMoveIncomplete = errors.New("index: records left to move")

// DropUnowned deletes the records, trees and hints-free data of every
// partition this node owns in no active version. It returns the number of
// partitions dropped.
func (ix *Index) DropUnowned(v MoveView) (int, error) {
	n := 0
	for part := 0; part < v.Partitions(); part++ {
		if ix.holds(v.WriteSets(uint16(part))) {
			continue
		}
		dropped, err := ix.cfg.Store.DropPartition(uint16(part))
		if err != nil {
			return n, err
		}
		if dropped {
			n++
		}
	}
	return n, nil
}

// DropPartition deletes a partition's records and tree, reporting whether
// there was anything to delete.
func (s *Store) DropPartition(part uint16) (bool, error) {
	lo := []byte{nsRecord, byte(part >> 8), byte(part)}
	// A scan that fails (the partition's data is what is damaged) still
	// drops it.
	if kvs, err := s.Scan(lo, prefixEnd(lo), 1, false); err == nil && len(kvs) == 0 {
		return false, nil
	}
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.leave()
	if err := s.writable(); err != nil {
		return false, fmt.Errorf("drop partition %d: %w", part, err)
	}
	b := s.db.NewBatch()
	tp := treePrefix(part, treeKindRecords)
	err := b.DeleteRange(lo, prefixEnd(lo), nil)
	if err == nil {
		err = b.DeleteRange(tp, prefixEnd(tp), nil)
	}
	if err != nil {
		_ = b.Close()
		return false, err
	}
	if err := s.commit(b, true, s.lockAll()); err != nil {
		return false, fmt.Errorf("drop partition %d: %w", part, err)
	}
	return true, nil
}
